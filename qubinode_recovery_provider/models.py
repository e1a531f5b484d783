"""Pydantic models shared by every layer of the provider.

Every persisted or exchanged model carries a ``schema_version`` so that stored diagnoses, plans and
findings stay readable after an upgrade: readers accept any version up to :data:`SCHEMA_VERSION` and
ignore fields they do not know.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Re-exported (every layer imports them from here); defined without pydantic in categories.py.
from qubinode_recovery_provider.categories import MAX_TRY_NUMBER as MAX_TRY_NUMBER
from qubinode_recovery_provider.categories import SCHEMA_VERSION as SCHEMA_VERSION
from qubinode_recovery_provider.categories import Health as Health
from qubinode_recovery_provider.categories import Risk as Risk
from qubinode_recovery_provider.categories import RootCause as RootCause
from qubinode_recovery_provider.categories import Severity as Severity
from qubinode_recovery_provider.categories import failure_text
from qubinode_recovery_provider.categories import utcnow as utcnow


class _Model(BaseModel):
    """Base: JSON-friendly, tolerant of fields added by newer versions. A model's validator is built on
    its first use (``defer_build``): a process (a failing task's) pays only for the models it uses."""

    model_config = ConfigDict(extra="ignore", use_enum_values=False, populate_by_name=True, defer_build=True)


class FailureEvent(_Model):
    """What failed, where and when, with the error text and the log tail."""

    schema_version: int = SCHEMA_VERSION
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    try_number: int | None = None
    map_index: int = -1
    host: str | None = None
    occurred_at: datetime = Field(default_factory=utcnow)
    exception_type: str | None = None
    exception_text: str = ""
    log_tail: list[str] = Field(default_factory=list)

    def text(self) -> str:
        """The text the analyzer reads: the log tail followed by the exception."""
        return failure_text(self.log_tail, self.exception_type, self.exception_text)


class TaskConfig(BaseModel):
    """What is known about the failed task (from the Airflow context or the caller), for the planner and
    the recovery operators.

    :param execution_timeout_seconds: the task's ``execution_timeout``; a retry after a timeout gets more
    :param try_number: the try that failed; later tries wait longer and are trusted less
    :param params: DAG params (``qubinode_auto_recovery`` is read by the policy)
    :param tags: DAG tags (``qubinode_auto_recovery:off`` is read by the policy)
    """

    model_config = ConfigDict(extra="ignore", defer_build=True)

    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    try_number: int | None = Field(default=None, ge=0)
    retries: int | None = Field(default=None, ge=0)
    execution_timeout_seconds: float | None = Field(default=None, gt=0)
    retry_delay_seconds: float | None = Field(default=None, ge=0)
    host: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)


class ServiceHealth(_Model):
    """Health of one systemd unit or podman container."""

    name: str
    kind: str = Field(description="systemd or podman")
    state: Health = Health.UNKNOWN
    detail: str = ""


class DiskUsage(_Model):
    mount: str
    percent: float | None = None
    free_bytes: int | None = None
    inodes_percent: float | None = None
    read_only: bool | None = None


class ResourceSnapshot(_Model):
    """System resources at the time of the failure (psutil)."""

    state: Health = Health.UNKNOWN
    cpu_percent: float | None = None
    memory_percent: float | None = None
    memory_available_bytes: int | None = None
    swap_percent: float | None = None
    load_average: list[float] = Field(default_factory=list)
    cpu_count: int | None = None
    open_files: int | None = None
    open_files_limit: int | None = None
    disks: list[DiskUsage] = Field(default_factory=list)
    detail: str = ""


class Reachability(_Model):
    """TCP reachability of one configured target."""

    target: str
    host: str
    port: int
    state: Health = Health.UNKNOWN
    latency_ms: float | None = None
    error: str = ""


class DiagnosticContext(_Model):
    """Everything known about the machine around a failure. Every probe reports ``unknown`` rather
    than raising.

    The reference guide's names work too, as views of the same fields (one source of truth):
    ``service_health`` (name -> status dict) is :attr:`services`, ``system_resources`` (a dict) is
    :attr:`resources`, ``recent_logs`` is :attr:`log_lines`; each may be given to the constructor or
    assigned later. ``plugin_name`` (what failed: a DAG id in Airflow, a job name in CI),
    ``failure_timestamp`` and ``error_message`` are fields of their own; :meth:`FailureAnalyzer.analyze
    <qubinode_recovery_provider.diagnosis.FailureAnalyzer.analyze>` given a context reads its
    ``recent_logs`` and ``error_message``. The guide's static helpers (:meth:`get_service_status`,
    :meth:`get_system_resources`, :meth:`get_network_connectivity`, :meth:`get_plugin_logs`) call the
    probes of :mod:`qubinode_recovery_provider.diagnosis.probes`.
    """

    schema_version: int = SCHEMA_VERSION
    collected_at: datetime = Field(default_factory=utcnow)
    host: str | None = None
    plugin_name: str | None = Field(default=None, description="what failed: a DAG id, a CI job name")
    failure_timestamp: datetime | None = None
    error_message: str = ""
    services: list[ServiceHealth] = Field(default_factory=list)
    resources: ResourceSnapshot = Field(default_factory=ResourceSnapshot)
    network: list[Reachability] = Field(default_factory=list)
    log_lines: list[str] = Field(default_factory=list)
    dependency_map: dict[str, list[str]] = Field(default_factory=dict)
    probe_errors: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _guide_names(cls, data: Any) -> Any:
        """Accept the guide's ``service_health``, ``system_resources`` and ``recent_logs`` keywords."""
        if not isinstance(data, dict) or not _GUIDE_CONTEXT_KEYS.intersection(data):
            return data
        data = dict(data)
        for guide, ours, convert in _GUIDE_CONTEXT_FIELDS:
            if guide in data:
                if ours in data:
                    raise ValueError(f"give {guide!r} or {ours!r}, not both")
                data[ours] = convert(data.pop(guide))
        return data

    def service(self, name: str) -> ServiceHealth | None:
        """Return the probed health of the unit or container called ``name`` (``.service`` optional)."""
        wanted = name.removesuffix(".service")
        for svc in self.services:
            if svc.name.removesuffix(".service") == wanted:
                return svc
        return None

    @property
    def service_health(self) -> dict[str, dict[str, Any]]:
        """The guide's view of :attr:`services`: name -> status dict (see :func:`service_status`)."""
        return {svc.name: service_status(svc) for svc in self.services}

    @service_health.setter
    def service_health(self, value: dict[str, Any]) -> None:
        self.services = _services_from_guide(value)

    @property
    def system_resources(self) -> dict[str, Any]:
        """The guide's view of :attr:`resources`, as a dict."""
        return self.resources.model_dump(mode="json")

    @system_resources.setter
    def system_resources(self, value: dict[str, Any] | ResourceSnapshot) -> None:
        self.resources = _resources_from_guide(value)

    @property
    def recent_logs(self) -> list[str]:
        """The guide's name of :attr:`log_lines`."""
        return self.log_lines

    @recent_logs.setter
    def recent_logs(self, value: list[Any]) -> None:
        self.log_lines = _lines_from_guide(value)

    def failure_event(self) -> FailureEvent:
        """The failure this context describes, as the analyzer reads it: the recent logs, then the error
        message; ``plugin_name`` as the DAG id (a CI job's name outside Airflow)."""
        return FailureEvent(
            dag_id=self.plugin_name,
            host=self.host,
            occurred_at=self.failure_timestamp or self.collected_at,
            exception_text=self.error_message,
            log_tail=list(self.log_lines),
        )

    @staticmethod
    def get_service_status(service_name: str) -> dict[str, Any]:
        """Probe one systemd unit (bounded; ``unknown`` instead of raising), as a guide status dict.

        :param service_name: the unit (``.service`` optional).
        """
        from qubinode_recovery_provider.diagnosis.probes import collect_systemd

        found = collect_systemd([service_name])
        return service_status(found[0]) if found else _unknown_status(service_name, "no unit name given")

    @staticmethod
    def get_system_resources() -> dict[str, Any]:
        """Measure CPU, memory, load, open files and disks (psutil), as a dict."""
        from qubinode_recovery_provider.diagnosis.probes import collect_resources

        return collect_resources().model_dump(mode="json")

    @staticmethod
    def get_network_connectivity(target: str) -> dict[str, Any]:
        """Open one TCP connection to ``host:port`` (bounded), as a dict with ``reachable`` and
        ``latency_ms``; a malformed target or a timeout gives ``state: unknown``.

        :param target: ``host:port`` or ``[ipv6]:port``.
        """
        from qubinode_recovery_provider.diagnosis.probes import check_reachability

        found = check_reachability([target]) if isinstance(target, str) and target.strip() else []
        if not found:
            return {
                "target": target,
                "state": Health.UNKNOWN.value,
                "reachable": None,
                "latency_ms": None,
                "error": "no target given",
            }
        result = found[0].model_dump(mode="json")
        result["reachable"] = _reachable(found[0].state)
        return result

    @staticmethod
    def get_plugin_logs(plugin_name: str, since_seconds: float = 300) -> list[dict[str, Any]]:
        """The last ``since_seconds`` of the systemd journal of the unit ``plugin_name`` (bounded, at
        most 500 entries, redacted), oldest first; no entry when the journal cannot be read.

        :param plugin_name: a systemd unit name.
        :param since_seconds: how far back to read (at most seven days).
        """
        from qubinode_recovery_provider.diagnosis.probes.journal import journal_entries

        entries, _reason = journal_entries(plugin_name, since_seconds)
        return entries


def service_status(svc: ServiceHealth) -> dict[str, Any]:
    """A :class:`ServiceHealth` as the guide's status dict: ``active`` (True, False, or None when not
    known) beside our ``state``, ``kind`` and ``detail``.

    :param svc: the probed service.
    """
    return {
        "name": svc.name,
        "kind": svc.kind,
        "state": svc.state.value,
        "active": _reachable(svc.state),
        "detail": svc.detail,
    }


def _reachable(state: Health) -> bool | None:
    return {Health.HEALTHY: True, Health.DEGRADED: True, Health.DOWN: False}.get(state)


def _unknown_status(name: str, detail: str) -> dict[str, Any]:
    return {"name": name, "kind": "systemd", "state": Health.UNKNOWN.value, "active": None, "detail": detail}


def _services_from_guide(value: Any) -> list[ServiceHealth]:
    """``{name: status}`` (a status dict as :func:`service_status` gives, or the guide's ``{"active":
    bool}``, or a :class:`ServiceHealth`) as our list of services."""
    if not isinstance(value, dict):
        raise TypeError(f"service_health must be a dict of name -> status dict, got {type(value).__name__}")
    services = []
    for name, status in value.items():
        if isinstance(status, ServiceHealth):
            services.append(status)
            continue
        if not isinstance(status, dict):
            raise TypeError(f"service_health[{name!r}] must be a status dict, got {type(status).__name__}")
        active = status.get("active")
        state = status.get("state") or (
            Health.HEALTHY if active is True else Health.DOWN if active is False else Health.UNKNOWN
        )
        services.append(
            ServiceHealth(
                name=str(name),
                kind=str(status.get("kind") or "systemd"),
                state=Health(state),
                detail=str(status.get("detail") or ""),
            )
        )
    return services


def _resources_from_guide(value: Any) -> ResourceSnapshot:
    if isinstance(value, ResourceSnapshot):
        return value
    if not isinstance(value, dict):
        raise TypeError(f"system_resources must be a dict, got {type(value).__name__}")
    return ResourceSnapshot.model_validate(value)


def _lines_from_guide(value: Any) -> list[str]:
    """Log lines from strings or from the guide's entries (dicts with a ``message``)."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise TypeError(f"recent_logs must be a list of lines or of entries, got {type(value).__name__}")
    return [str(item.get("message", "")) if isinstance(item, dict) else str(item) for item in value]


_GUIDE_CONTEXT_FIELDS: tuple[tuple[str, str, Any], ...] = (
    ("service_health", "services", _services_from_guide),
    ("system_resources", "resources", _resources_from_guide),
    ("recent_logs", "log_lines", _lines_from_guide),
)
_GUIDE_CONTEXT_KEYS = frozenset(guide for guide, _, _ in _GUIDE_CONTEXT_FIELDS)


class PatternMatch(_Model):
    """One known-error pattern that matched, with the line that matched it."""

    pattern_id: str
    category: RootCause
    line_number: int = Field(description="1-based line in the analysed text")
    evidence: str
    weight: float = 0.0


class LLMOpinion(_Model):
    """What an LLM second opinion said about a diagnosis and what became of it (``docs/llm.md``).

    :param model: the model that was asked (its configured name), shown in every output.
    :param status: ``applied`` (its answer is in the diagnosis, within the confidence cap),
        ``fallback`` (asking failed: the pattern result stands; ``detail`` says why) or ``deferred``
        (the failure callback had no time left: the recovery DAG's first task asks).
    :param root_cause: the cause it named.
    :param confidence: the confidence it claimed (the diagnosis holds the capped one).
    :param retryable: whether it thinks a retry can help, and ``retryable_reason`` why.
    :param recommended_actions: its advice for a person: text, never run.
    :param reasoning: its explanation.
    :param pattern_root_cause: the pattern diagnosis before the opinion was applied.
    :param pattern_confidence: its confidence.
    :param cached: the answer came from the cache (no call was made).
    :param detail: why it fell back or was deferred, what the cap did.
    """

    model: str
    status: str
    root_cause: RootCause | None = None
    confidence: float | None = None
    retryable: bool | None = None
    retryable_reason: str = ""
    recommended_actions: list[str] = Field(default_factory=list)
    reasoning: str = ""
    pattern_root_cause: RootCause | None = None
    pattern_confidence: float | None = None
    cached: bool = False
    detail: str = ""

    @property
    def label(self) -> str:
        """How every output names it: ``LLM second opinion (model X)``."""
        return f"LLM second opinion (model {self.model})"

    def describe(self) -> str:
        """One line for reports: the label, what it said and what became of it."""
        if self.status != "applied":
            return f"{self.label}: {self.status} - {self.detail}"
        said = self.root_cause.value if self.root_cause else "?"
        claimed = f" (claimed {self.confidence:.2f})" if self.confidence is not None else ""
        before = self.pattern_root_cause.value if self.pattern_root_cause else "?"
        retry = "" if self.retryable is None else f"; retryable {self.retryable}: {self.retryable_reason}"
        cached = " [cached]" if self.cached else ""
        return (
            f"{self.label}{cached}: {said}{claimed}; patterns said {before} "
            f"({self.pattern_confidence or 0:.2f}); {self.detail}{retry}"
        )


class ModelEvidence(_Model):
    """A line that weighed for the learned model's verdict."""

    line_number: int = Field(description="1-based line in the analysed text")
    text: str
    weight: float = 0.0


class ModelOpinion(_Model):
    """What the learned text model said about a failure the patterns were not confident of.

    :param root_cause: the cause it named.
    :param probability: its own probability for that cause (the diagnosis holds the calibrated one).
    :param decided: whether its verdict became the diagnosis (``Diagnosis.decided_by`` is ``model``).
    :param evidence: the lines that weighed most for its verdict, heaviest first.
    :param pattern_root_cause: what the patterns said, and ``pattern_confidence`` how sure they were.
    """

    root_cause: RootCause
    probability: float = Field(ge=0.0, le=1.0)
    pattern_root_cause: RootCause
    pattern_confidence: float = Field(ge=0.0, le=1.0)
    decided: bool = False
    evidence: list[ModelEvidence] = Field(default_factory=list)


class Diagnosis(_Model):
    """The analyzer's verdict on one failure."""

    schema_version: int = SCHEMA_VERSION
    id: str | None = None
    root_cause: RootCause
    summary: str = ""
    confidence: float = Field(ge=0.0, le=1.0)
    severity: Severity = Severity.MEDIUM
    retryable: bool | None = Field(
        default=None, description="True: a retry can help; False: it cannot; None: not known"
    )
    retry_delay_seconds: int | None = None
    retry_evidence: str = Field(
        default="", description="what the ledger says about earlier retries of this failure, when it decided"
    )
    affected_services: list[str] = Field(default_factory=list)
    matched_patterns: list[PatternMatch] = Field(default_factory=list)
    fingerprint: str
    template: str = Field(default="", description="masked decisive line the fingerprint is built from")
    recommended_actions: list[str] = Field(default_factory=list)
    diagnostic_commands: list[str] = Field(default_factory=list)
    corroboration: list[str] = Field(default_factory=list)
    contradictions: list[str] = Field(default_factory=list)
    llm_reasoning: str | None = Field(
        default=None, description="the LLM second opinion's reasoning, when one was applied"
    )
    llm: LLMOpinion | None = Field(default=None, description="the LLM second opinion, when one was asked")
    decided_by: str = Field(
        default="patterns",
        description="patterns; or model: the learned text model named the cause (no pattern was confident)",
    )
    model: ModelOpinion | None = Field(
        default=None, description="the learned model's opinion, when the patterns were not confident"
    )
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    diagnosed_at: datetime = Field(default_factory=utcnow)

    @property
    def primary_pattern(self) -> str | None:
        return self.matched_patterns[0].pattern_id if self.matched_patterns else None

    @property
    def decisive_pattern(self) -> str | None:
        """The pattern the diagnosis was made from: the first matched pattern when it is of the
        diagnosis's category; None when another component named the category (no pattern decided)."""
        first = self.matched_patterns[0] if self.matched_patterns else None
        if first is None or first.category is not self.root_cause or self.decided_by != "patterns":
            return None
        return first.pattern_id

    def to_json_dict(self) -> dict[str, Any]:
        """A plain JSON-ready dict (enums as values, datetimes as ISO strings)."""
        return self.model_dump(mode="json")


class RecoveryActionType(enum.StrEnum):
    """The kinds of recovery option a plan can offer."""

    RETRY = "retry"
    WAIT = "wait"
    MANUAL_FIX = "manual_fix"
    ROLLBACK = "rollback"
    SKIP = "skip"
    ESCALATE = "escalate"


class RecoveryOption(_Model):
    """One way out of a failure. ``action`` names an allowlisted automatic action (or is None for
    options a person carries out); ``steps`` are text for people, never executed."""

    type: RecoveryActionType
    title: str
    priority: int = Field(description="1 is tried first")
    confidence: float = Field(ge=0.0, le=1.0)
    risk: Risk = Risk.LOW
    expected_duration_seconds: int = 0
    automatic: bool = False
    action: str | None = None
    action_args: dict[str, Any] = Field(default_factory=dict)
    steps: list[str] = Field(default_factory=list)
    prerequisites: list[str] = Field(default_factory=list)
    rollback_steps: list[str] = Field(default_factory=list)
    success_criteria: list[str] = Field(default_factory=list)
    reason: str = ""

    @property
    def action_type(self) -> RecoveryActionType:
        """The reference guide's name of :attr:`type`."""
        return self.type

    @property
    def risk_level(self) -> Risk:
        """The reference guide's name of :attr:`risk`."""
        return self.risk


class RecoveryPlan(_Model):
    """Ranked recovery options for one diagnosis."""

    schema_version: int = SCHEMA_VERSION
    id: str | None = None
    fingerprint: str
    root_cause: RootCause
    options: list[RecoveryOption] = Field(default_factory=list)
    recommended_index: int | None = None
    created_at: datetime = Field(default_factory=utcnow)
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None

    @property
    def recommended(self) -> RecoveryOption | None:
        if self.recommended_index is None or not self.options:
            return None
        return self.options[self.recommended_index]

    @property
    def recommended_option(self) -> RecoveryOption | None:
        """The reference guide's name of :attr:`recommended`."""
        return self.recommended

    @property
    def failed_plugin(self) -> str | None:
        """The reference guide's name of what failed: :attr:`dag_id` (a DAG id, or a CI job's name)."""
        return self.dag_id


class IncidentState(enum.StrEnum):
    OPEN = "open"
    RECOVERING = "recovering"
    RESOLVED = "resolved"
    ESCALATED = "escalated"


class AttemptOutcome(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRY_RUN = "dry_run"
    BLOCKED = "blocked"


class Incident(_Model):
    """One incident per fingerprint: the same failure seen again is another occurrence."""

    schema_version: int = SCHEMA_VERSION
    id: int | None = None
    fingerprint: str
    root_cause: RootCause = RootCause.UNKNOWN
    summary: str = ""
    state: IncidentState = IncidentState.OPEN
    occurrences: int = 0
    first_seen: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)
    dag_ids: list[str] = Field(default_factory=list)
    hosts: list[str] = Field(default_factory=list)


class RecoveryAttempt(_Model):
    """One execution (or dry run) of one recovery option, keyed for idempotency."""

    schema_version: int = SCHEMA_VERSION
    id: int | None = None
    incident_fingerprint: str
    idempotency_key: str
    action: str
    action_args: dict[str, Any] = Field(default_factory=dict)
    dry_run: bool = False
    outcome: AttemptOutcome = AttemptOutcome.PENDING
    detail: str = ""
    host: str | None = None
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None


class ShadowErrorType(enum.StrEnum):
    VM_NOT_CREATED = "vm_not_created"
    VM_NOT_RUNNING = "vm_not_running"
    LINEAGE_MISSING = "lineage_missing"
    LINEAGE_INCOMPLETE = "lineage_incomplete"
    STATE_MISMATCH = "state_mismatch"
    INVENTORY_UNREACHABLE = "inventory_unreachable"
    KCLI_CHECK_FAILED = "kcli_check_failed"


class ShadowError(_Model):
    """A run Airflow calls a success although the VM, the lineage or the task states disagree."""

    schema_version: int = SCHEMA_VERSION
    type: ShadowErrorType
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    resource: str | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    severity: Severity = Severity.HIGH
    evidence: list[str] = Field(default_factory=list)
    detected_at: datetime = Field(default_factory=utcnow)
    inferred: bool = False
    """True when the VM was inferred from the task's command line, lineage facets or log (no declaration)."""

    @property
    def dedup_key(self) -> str:
        return "|".join(
            [self.type.value, self.dag_id or "", self.run_id or "", self.task_id or "", self.resource or ""]
        )
