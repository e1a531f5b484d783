"""Diagnosis: context collectors, the known-error library and the analyzer. Plain Python, no Airflow."""

from __future__ import annotations

from qubinode_recovery_provider.diagnosis.analyzer import FailureAnalyzer
from qubinode_recovery_provider.diagnosis.patterns import (
    KnownErrorPattern,
    PackError,
    Pattern,
    PatternLibrary,
)
from qubinode_recovery_provider.models import Diagnosis, DiagnosticContext, FailureEvent, RootCause, Severity

#: The reference guide's names of :class:`RootCause` and :class:`Severity`.
RootCauseCategory = RootCause
FailureSeverity = Severity

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
