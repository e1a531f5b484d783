"""Escalating a shadow finding: a run Airflow calls a success although the scan found otherwise.

The ledger deduplicates findings (``ShadowError.dedup_key``), so the shadow hand-off escalates a finding
only the first time it is seen; :func:`queue_finding_escalation` puts it in the same escalation outbox as
the recovery plans' escalations, under its own fingerprint (:func:`finding_fingerprint`), with the labels
``shadow-error``, the finding's type and its severity. Plain Python: no Airflow import.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import ShadowError
    from qubinode_recovery_provider.store import Ledger

#: The label every shadow finding's escalation carries (with the finding's type and severity).
SHADOW_LABEL = "shadow-error"


def finding_fingerprint(finding: ShadowError) -> str:
    """A stable id for the finding in the escalation outbox."""
    return "shadow-" + hashlib.sha256(finding.dedup_key.encode("utf-8")).hexdigest()[:16]


def finding_title(finding: ShadowError) -> str:
    """The escalation's title: the finding's type, DAG and what it is about."""
    target = finding.resource or finding.task_id or finding.run_id or "?"
    where = f" in {finding.dag_id}" if finding.dag_id else ""
    return f"Shadow error {finding.type.value}{where}: {target}"


def finding_body(finding: ShadowError) -> str:
    """Markdown for a person: what was seen, where, how sure."""
    rows = [
        ("Finding", finding.type.value),
        ("Severity", finding.severity.value),
        ("Confidence", f"{finding.confidence:.2f}"),
        ("DAG", finding.dag_id),
        ("Run", finding.run_id),
        ("Task", finding.task_id),
        ("Resource", finding.resource),
        ("Detected", finding.detected_at.isoformat()),
    ]
    table = "\n".join(f"| {k} | `{v}` |" for k, v in rows if v)
    evidence = "\n".join(f"- {line}" for line in finding.evidence)
    return (
        "Airflow reports this run as a success, but the shadow scan found otherwise.\n\n"
        f"| | |\n|---|---|\n{table}\n\n### Evidence\n\n{evidence}\n"
    )


def queue_finding_escalation(ledger: Ledger, finding: ShadowError) -> int:
    """Put ``finding`` in the escalation outbox (spooled when the ledger is unavailable); the entry's id.

    :param ledger: the ledger.
    :param finding: a finding seen for the first time.
    """
    labels = [SHADOW_LABEL, finding.type.value, finding.severity.value]
    return ledger.enqueue_escalation(
        finding_fingerprint(finding), finding_title(finding), finding_body(finding), labels
    )


__all__ = ["SHADOW_LABEL", "finding_body", "finding_fingerprint", "finding_title", "queue_finding_escalation"]
