"""Handing findings on: record them in the ledger, queue escalations, build recovery-run confs.

The ledger deduplicates findings (``ShadowError.dedup_key``): a finding seen again only bumps its
count, so only raised findings are escalated -- new ones, and ones a person acknowledged or resolved
(``qubinode-recovery findings ack|resolve``) that changed since (by the escalation package:
:func:`~qubinode_recovery_provider.escalation.findings.queue_finding_escalation`). Which ones start a
recovery run is the intake's rule (:func:`~qubinode_recovery_provider.recovery.intake.finding_starts_run`:
new critical ones, up to a cap).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.escalation.findings import queue_finding_escalation
from qubinode_recovery_provider.models import Severity, ShadowError
from qubinode_recovery_provider.recovery.intake import finding_starts_run

if TYPE_CHECKING:
    from qubinode_recovery_provider.store import Ledger

ESCALATE_FROM = Severity.HIGH
MAX_RECOVERY_RUNS = 10


@dataclass
class Handoff:
    """What recording a scan's findings did."""

    recorded: int = 0
    new: int = 0
    escalated: int = 0
    recovery_confs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "recorded": self.recorded,
            "new": self.new,
            "escalated": self.escalated,
            "recovery_runs": len(self.recovery_confs),
        }


def recovery_conf(finding: ShadowError, dry_run: bool) -> dict[str, Any]:
    """The conf of a ``qubinode_failure_recovery`` run for a critical finding."""
    return {
        "failed_dag_id": finding.dag_id,
        "failed_task_id": finding.task_id,
        "failed_run_id": finding.run_id,
        "failure_message": f"shadow error {finding.type.value}: " + "; ".join(finding.evidence),
        "enable_auto_recovery": True,
        "dry_run": dry_run,
        "source": "qubinode_shadow_scan",
        "finding": finding.model_dump(mode="json"),
    }


def hand_off(
    findings: Iterable[ShadowError],
    ledger: Ledger,
    start_recovery: bool = False,
    dry_run: bool = False,
    max_recovery_runs: int = MAX_RECOVERY_RUNS,
) -> Handoff:
    """Record every finding; escalate raised ones (new, or changed since acknowledged/resolved) of high
    severity or worse; return the confs of the recovery runs the intake starts (raised critical findings
    when ``start_recovery``, at most ``max_recovery_runs``)."""
    result = Handoff()
    for finding in findings:
        result.recorded += 1
        _, is_new = ledger.record_shadow_error(finding)
        if not is_new:
            continue
        result.new += 1
        if finding.severity.rank < ESCALATE_FROM.rank:
            continue
        queue_finding_escalation(ledger, finding)
        result.escalated += 1
        started = len(result.recovery_confs)
        if finding_starts_run(
            finding, is_new=is_new, start_recovery=start_recovery, started=started, max_runs=max_recovery_runs
        ):
            result.recovery_confs.append(recovery_conf(finding, dry_run))
    return result
