"""The words a diagnosis speaks in: root cause, severity, health, risk (plain enums), the schema version
and the clock. Importable without pydantic, so that a process that only diagnoses and prints (a one-line
``qubinode-recovery diagnose``) does not load it; :mod:`qubinode_recovery_provider.models` re-exports
every name.

Plain Python, no Airflow.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

SCHEMA_VERSION = 1
#: The highest try number accepted from outside (CLI flags, a recovery run's conf): Airflow counts tries
#: from 1, and no task is retried ten thousand times.
MAX_TRY_NUMBER = 10_000


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def failure_text(log_tail: list[str], exception_type: str | None, exception_text: str) -> str:
    """The text the analyzer reads of a failure event: the log tail followed by the exception
    (``FailureEvent.text`` and its plain twin).

    :param log_tail: the lines of the log tail.
    :param exception_type: the exception's type name, if any.
    :param exception_text: the exception's text ("" when the log tail shows it already).
    """
    parts = list(log_tail)
    if exception_text:
        prefix = f"{exception_type}: " if exception_type else ""
        parts.append(prefix + exception_text)
    return "\n".join(parts)


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


class Risk(enum.StrEnum):
    """How much harm an option can do if it goes wrong."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return list(Risk).index(self)


class Health(enum.StrEnum):
    """State of a probed service, resource or network target."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    UNKNOWN = "unknown"


__all__ = [
    "MAX_TRY_NUMBER",
    "SCHEMA_VERSION",
    "Health",
    "Risk",
    "RootCause",
    "Severity",
    "failure_text",
    "utcnow",
]
