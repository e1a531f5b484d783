"""Handing findings to the ledger and to escalation: dedup, severity gate, recovery-run confs."""

from __future__ import annotations

from pathlib import Path

from qubinode_recovery_provider.escalation.findings import finding_body, finding_fingerprint
from qubinode_recovery_provider.models import Severity, ShadowError, ShadowErrorType
from qubinode_recovery_provider.shadow.handoff import hand_off
from qubinode_recovery_provider.store import Ledger


def finding(kind: ShadowErrorType, severity: Severity, run_id: str = "r1") -> ShadowError:
    return ShadowError(
        type=kind,
        dag_id="kcli_build",
        run_id=run_id,
        task_id="create_vm",
        resource="libvirt://lab/web1",
        confidence=0.9,
        severity=severity,
        evidence=["Airflow: run r1 succeeded", "libvirt: 'web1' is not among them"],
    )


def test_new_findings_are_escalated_once_and_critical_ones_start_recovery(tmp_path: Path) -> None:
    findings = [
        finding(ShadowErrorType.VM_NOT_CREATED, Severity.CRITICAL),
        finding(ShadowErrorType.VM_NOT_RUNNING, Severity.HIGH),
        finding(ShadowErrorType.LINEAGE_MISSING, Severity.MEDIUM),
    ]
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool") as ledger:
        first = hand_off(findings, ledger, start_recovery=True, dry_run=True)
        again = hand_off(findings, ledger, start_recovery=True)
        pending = ledger.pending_escalations()
        recorded = ledger.shadow_errors()
    assert first.to_dict() == {"recorded": 3, "new": 3, "escalated": 2, "recovery_runs": 1}
    assert again.to_dict() == {"recorded": 3, "new": 0, "escalated": 0, "recovery_runs": 0}
    assert len(pending) == 2
    assert {r["seen_count"] for r in recorded} == {2}
    (conf,) = first.recovery_confs
    assert conf["failed_dag_id"] == "kcli_build"
    assert conf["failed_run_id"] == "r1"
    assert conf["dry_run"] is True
    assert conf["finding"]["type"] == "vm_not_created"


def test_recovery_runs_are_off_unless_asked_and_capped(tmp_path: Path) -> None:
    many = [finding(ShadowErrorType.VM_NOT_CREATED, Severity.CRITICAL, run_id=f"r{i}") for i in range(5)]
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool") as ledger:
        assert hand_off(many[:2], ledger).recovery_confs == []
        assert len(hand_off(many[2:], ledger, start_recovery=True, max_recovery_runs=2).recovery_confs) == 2


def test_escalation_text_is_for_people() -> None:
    item = finding(ShadowErrorType.VM_NOT_CREATED, Severity.CRITICAL)
    body = finding_body(item)
    assert "| Resource | `libvirt://lab/web1` |" in body
    assert "- libvirt: 'web1' is not among them" in body
    assert finding_fingerprint(item) == finding_fingerprint(item.model_copy())
    assert finding_fingerprint(item).startswith("shadow-")
