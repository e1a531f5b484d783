"""The analyzer's input and result as plain dataclasses, for a process that only diagnoses and prints
(a one-line ``qubinode-recovery diagnose``) or decides (the retry policy's first decision in a fresh
task process): the fields, defaults and JSON of :class:`~qubinode_recovery_provider.models.Diagnosis`,
:class:`~qubinode_recovery_provider.models.PatternMatch` and
:class:`~qubinode_recovery_provider.models.FailureEvent`, without loading pydantic or building the
models' classes (about half of that command's start-up, and of that decision's).
``FailureAnalyzer(plain_results=True)`` (or ``analyze(..., plain=True)``) makes them; everything else
(the ledger, the planner, the LLM second opinion) takes the pydantic models: :meth:`PlainDiagnosis.to_model`
and :meth:`PlainFailureEvent.to_model` convert. Tests hold the fields and the JSON equal to the models'.

Plain Python, no Airflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.categories import SCHEMA_VERSION, RootCause, Severity, failure_text, utcnow

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import Diagnosis, FailureEvent


@dataclass
class PlainFailureEvent:
    """:class:`~qubinode_recovery_provider.models.FailureEvent` without pydantic."""

    schema_version: int = SCHEMA_VERSION
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    try_number: int | None = None
    map_index: int = -1
    host: str | None = None
    occurred_at: datetime = field(default_factory=utcnow)
    exception_type: str | None = None
    exception_text: str = ""
    log_tail: list[str] = field(default_factory=list)

    def text(self) -> str:
        """As :meth:`FailureEvent.text`: the log tail followed by the exception."""
        return failure_text(self.log_tail, self.exception_type, self.exception_text)

    def to_model(self) -> FailureEvent:
        """The pydantic :class:`~qubinode_recovery_provider.models.FailureEvent` of this event."""
        from qubinode_recovery_provider.models import FailureEvent

        return FailureEvent.model_validate({f.name: getattr(self, f.name) for f in fields(self)})


@dataclass
class PlainPatternMatch:
    """:class:`~qubinode_recovery_provider.models.PatternMatch` without pydantic."""

    pattern_id: str
    category: RootCause
    line_number: int
    evidence: str
    weight: float = 0.0


@dataclass
class PlainModelEvidence:
    """:class:`~qubinode_recovery_provider.models.ModelEvidence` without pydantic."""

    line_number: int
    text: str
    weight: float = 0.0


@dataclass
class PlainModelOpinion:
    """:class:`~qubinode_recovery_provider.models.ModelOpinion` without pydantic."""

    root_cause: RootCause
    probability: float
    pattern_root_cause: RootCause
    pattern_confidence: float
    decided: bool = False
    evidence: list[PlainModelEvidence] = field(default_factory=list)


@dataclass
class PlainDiagnosis:
    """:class:`~qubinode_recovery_provider.models.Diagnosis` without pydantic (no LLM opinion: a
    second opinion works on the model)."""

    root_cause: RootCause
    confidence: float
    fingerprint: str
    schema_version: int = SCHEMA_VERSION
    id: str | None = None
    summary: str = ""
    severity: Severity = Severity.MEDIUM
    retryable: bool | None = None
    retry_delay_seconds: int | None = None
    retry_evidence: str = ""
    affected_services: list[str] = field(default_factory=list)
    matched_patterns: list[PlainPatternMatch] = field(default_factory=list)
    template: str = ""
    recommended_actions: list[str] = field(default_factory=list)
    diagnostic_commands: list[str] = field(default_factory=list)
    corroboration: list[str] = field(default_factory=list)
    contradictions: list[str] = field(default_factory=list)
    llm_reasoning: str | None = None
    llm: None = None
    decided_by: str = "patterns"
    model: PlainModelOpinion | None = None
    dag_id: str | None = None
    task_id: str | None = None
    run_id: str | None = None
    diagnosed_at: datetime = field(default_factory=utcnow)

    @property
    def primary_pattern(self) -> str | None:
        return self.matched_patterns[0].pattern_id if self.matched_patterns else None

    @property
    def decisive_pattern(self) -> str | None:
        """As :attr:`Diagnosis.decisive_pattern`: the first matched pattern when it is of the category."""
        first = self.matched_patterns[0] if self.matched_patterns else None
        if first is None or first.category is not self.root_cause or self.decided_by != "patterns":
            return None
        return first.pattern_id

    def model_copy(self, *, update: dict[str, Any] | None = None) -> PlainDiagnosis:
        """As pydantic's ``model_copy``: a shallow copy with the fields of ``update`` replaced."""
        return replace(self, **(update or {}))

    def to_json_dict(self) -> dict[str, Any]:
        """The JSON of :meth:`Diagnosis.to_json_dict`, key for key (in the model's field order)."""
        data = {name: _json(getattr(self, name)) for name in JSON_ORDER}
        return data

    def to_model(self) -> Diagnosis:
        """The pydantic :class:`~qubinode_recovery_provider.models.Diagnosis` of this result."""
        from qubinode_recovery_provider.models import Diagnosis

        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["matched_patterns"] = [vars(m) for m in self.matched_patterns]
        values["model"] = asdict(self.model) if self.model is not None else None
        return Diagnosis.model_validate(values)


#: The order of :class:`~qubinode_recovery_provider.models.Diagnosis`'s fields (its JSON's key order).
JSON_ORDER = (
    "schema_version",
    "id",
    "root_cause",
    "summary",
    "confidence",
    "severity",
    "retryable",
    "retry_delay_seconds",
    "retry_evidence",
    "affected_services",
    "matched_patterns",
    "fingerprint",
    "template",
    "recommended_actions",
    "diagnostic_commands",
    "corroboration",
    "contradictions",
    "llm_reasoning",
    "llm",
    "decided_by",
    "model",
    "dag_id",
    "task_id",
    "run_id",
    "diagnosed_at",
)


def _json(value: Any) -> Any:
    """A value as pydantic's JSON mode gives it (enum values, ``Z`` for UTC, nested matches)."""
    if isinstance(value, RootCause | Severity):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, PlainPatternMatch | PlainModelOpinion | PlainModelEvidence):
        return {f.name: _json(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list):
        return [_json(item) for item in value]
    return value


__all__ = [
    "JSON_ORDER",
    "PlainDiagnosis",
    "PlainFailureEvent",
    "PlainModelEvidence",
    "PlainModelOpinion",
    "PlainPatternMatch",
]
