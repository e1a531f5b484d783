"""Pydantic models shared by every layer of the provider.

Every persisted or exchanged model carries a ``schema_version`` so that stored diagnoses, plans and
findings stay readable after an upgrade: readers accept any version up to :data:`SCHEMA_VERSION` and
ignore fields they do not know.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
#: The highest try number accepted from outside (CLI flags, a recovery run's conf): Airflow counts tries
#: from 1, and no task is retried ten thousand times.
MAX_TRY_NUMBER = 10_000


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class RootCause(enum.StrEnum):
    """The ten root-cause categories of the brief."""

    VIRTUALIZATION = "virtualization"
    NETWORK = "network"
    STORAGE = "storage"
    SERVICE_DEPENDENCY = "service_dependency"
    CREDENTIAL = "credential"
    RESOURCE_EXHAUSTION = "resource_exhaustion"
    CONFIGURATION = "configuration"
    TIMEOUT = "timeout"
    STATE_MISMATCH = "state_mismatch"
    UNKNOWN = "unknown"


class Severity(enum.StrEnum):
    """How bad a failure is for the DAG that hit it."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class Health(enum.StrEnum):
    """State of a probed service, resource or network target."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


class _Model(BaseModel):
    """Base: JSON-friendly, tolerant of fields added by newer versions."""

    model_config = ConfigDict(extra="ignore", use_enum_values=False, populate_by_name=True)


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
        parts = list(self.log_tail)
        if self.exception_text:
            prefix = f"{self.exception_type}: " if self.exception_type else ""
            parts.append(prefix + self.exception_text)
        return "\n".join(parts)


class TaskConfig(BaseModel):
    """What is known about the failed task (from the Airflow context or the caller), for the planner and
    the recovery operators.

    :param execution_timeout_seconds: the task's ``execution_timeout``; a retry after a timeout gets more
    :param try_number: the try that failed; later tries wait longer and are trusted less
    :param params: DAG params (``qubinode_auto_recovery`` is read by the policy)
    :param tags: DAG tags (``qubinode_auto_recovery:off`` is read by the policy)
    """

    model_config = ConfigDict(extra="ignore")

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
    than raising."""

    schema_version: int = SCHEMA_VERSION
    collected_at: datetime = Field(default_factory=utcnow)
    host: str | None = None
    services: list[ServiceHealth] = Field(default_factory=list)
    resources: ResourceSnapshot = Field(default_factory=ResourceSnapshot)
    network: list[Reachability] = Field(default_factory=list)
    log_lines: list[str] = Field(default_factory=list)
    dependency_map: dict[str, list[str]] = Field(default_factory=dict)
    probe_errors: list[str] = Field(default_factory=list)

    def service(self, name: str) -> ServiceHealth | None:
        """Return the probed health of the unit or container called ``name`` (``.service`` optional)."""
        wanted = name.removesuffix(".service")
        for svc in self.services:
            if svc.name.removesuffix(".service") == wanted:
                return svc
        return None


class PatternMatch(_Model):
    """One known-error pattern that matched, with the line that matched it."""

    pattern_id: str
    category: RootCause
    line_number: int = Field(description="1-based line in the analysed text")
    evidence: str
    weight: float = 0.0


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
    affected_services: list[str] = Field(default_factory=list)
    matched_patterns: list[PatternMatch] = Field(default_factory=list)
    fingerprint: str
    template: str = Field(default="", description="masked decisive line the fingerprint is built from")
    recommended_actions: list[str] = Field(default_factory=list)
    diagnostic_commands: list[str] = Field(default_factory=list)
    corroboration: list[str] = Field(default_factory=list)
    contradictions: list[str] = Field(default_factory=list)
    llm_reasoning: str | None = None
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    diagnosed_at: datetime = Field(default_factory=utcnow)

    @property
    def primary_pattern(self) -> str | None:
        return self.matched_patterns[0].pattern_id if self.matched_patterns else None

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


class Risk(enum.StrEnum):
    """How much harm an option can do if it goes wrong."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(Risk).index(self)


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
