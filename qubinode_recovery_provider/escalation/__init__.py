"""Escalation: hand an incident a recovery could not fix to a person. Plain Python, no Airflow.

:func:`~qubinode_recovery_provider.escalation.outbox.queue_escalation` queues it once per fingerprint and
failed run in the ledger's escalation outbox (the recovery executor and the default sink both call it);
the default sink, :func:`~qubinode_recovery_provider.escalation.reports.escalate`, adds a Markdown report
on disk. A shadow finding is queued in the same outbox by
:func:`~qubinode_recovery_provider.escalation.findings.queue_finding_escalation`.
"""

from __future__ import annotations

from qubinode_recovery_provider.escalation.findings import queue_finding_escalation
from qubinode_recovery_provider.escalation.outbox import (
    ESCALATION_LABELS,
    QueuedEscalation,
    escalation_key,
    escalation_labels,
    escalation_text,
    queue_escalation,
)
from qubinode_recovery_provider.escalation.reports import EscalationResult, escalate, reports_dir

__all__ = [
    "ESCALATION_LABELS",
    "EscalationResult",
    "QueuedEscalation",
    "escalate",
    "escalation_key",
    "escalation_labels",
    "escalation_text",
    "queue_escalation",
    "queue_finding_escalation",
    "reports_dir",
]
