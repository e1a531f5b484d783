"""Diagnosis: context collectors, the known-error library and the analyzer. Plain Python, no Airflow.

The names below are imported on first use, so that ``from qubinode_recovery_provider.diagnosis import
FailureAnalyzer`` loads neither pydantic's models nor YAML before they are needed (start-up time of the
CLI and of a failing task: ``bench/bench_startup.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qubinode_recovery_provider.lazy import lazy_attributes

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis.analyzer import FailureAnalyzer
    from qubinode_recovery_provider.diagnosis.pack_schema import Pattern
    from qubinode_recovery_provider.diagnosis.patterns import KnownErrorPattern, PackError, PatternLibrary
    from qubinode_recovery_provider.models import (
        Diagnosis,
        DiagnosticContext,
        FailureEvent,
        RootCause,
        Severity,
    )

    #: The reference guide's names of :class:`RootCause` and :class:`Severity`.
    RootCauseCategory = RootCause
    FailureSeverity = Severity

_WHERE = {
    "FailureAnalyzer": ("qubinode_recovery_provider.diagnosis.analyzer", "FailureAnalyzer"),
    "KnownErrorPattern": ("qubinode_recovery_provider.diagnosis.patterns", "KnownErrorPattern"),
    "PackError": ("qubinode_recovery_provider.diagnosis.patterns", "PackError"),
    "PatternLibrary": ("qubinode_recovery_provider.diagnosis.patterns", "PatternLibrary"),
    "Pattern": ("qubinode_recovery_provider.diagnosis.pack_schema", "Pattern"),
    "Diagnosis": ("qubinode_recovery_provider.models", "Diagnosis"),
    "DiagnosticContext": ("qubinode_recovery_provider.models", "DiagnosticContext"),
    "FailureEvent": ("qubinode_recovery_provider.models", "FailureEvent"),
    "RootCauseCategory": ("qubinode_recovery_provider.categories", "RootCause"),
    "FailureSeverity": ("qubinode_recovery_provider.categories", "Severity"),
}

__getattr__ = lazy_attributes(__name__, _WHERE, globals())


__all__ = [
    "Diagnosis",
    "DiagnosticContext",
    "FailureAnalyzer",
    "FailureEvent",
    "FailureSeverity",
    "KnownErrorPattern",
    "PackError",
    "Pattern",
    "PatternLibrary",
    "RootCauseCategory",
]
