"""Diagnosis: context collectors, the known-error library and the analyzer. Plain Python, no Airflow."""

from __future__ import annotations

from qubinode_recovery_provider.diagnosis.analyzer import FailureAnalyzer
from qubinode_recovery_provider.diagnosis.patterns import PackError, Pattern, PatternLibrary
from qubinode_recovery_provider.models import Diagnosis, DiagnosticContext, FailureEvent

__all__ = [
    "Diagnosis",
    "DiagnosticContext",
    "FailureAnalyzer",
    "FailureEvent",
    "PackError",
    "Pattern",
    "PatternLibrary",
]
