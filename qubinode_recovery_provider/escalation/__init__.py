"""Escalation: hand an incident a recovery could not fix to a person. Plain Python, no Airflow.

The default sink is the ledger's escalation outbox plus a Markdown report on disk
(:func:`~qubinode_recovery_provider.escalation.reports.escalate`); a GitHub issue sink reads the same
outbox.
"""

from __future__ import annotations

from qubinode_recovery_provider.escalation.reports import (
    EscalationResult,
    escalate,
    escalation_key,
    reports_dir,
)

__all__ = ["EscalationResult", "escalate", "escalation_key", "reports_dir"]
