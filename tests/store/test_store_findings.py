"""Shadow findings with a lifecycle: recorded once per (type, run, resource), acknowledged or resolved
from the CLI, raised again only when they change, escalated through the same outbox as incidents (on
SQLite and on the real PostgreSQL server: the ``ledger`` fixtures of this folder)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from qubinode_recovery_provider.cli import main
from qubinode_recovery_provider.models import Severity, ShadowError, ShadowErrorType
from qubinode_recovery_provider.shadow.handoff import hand_off
from qubinode_recovery_provider.store import Ledger

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _finding(state: str = "shut off", at: datetime = T0, listed: int = 3) -> ShadowError:
    return ShadowError(
        type=ShadowErrorType.VM_NOT_RUNNING,
        dag_id="lab_deploy",
        run_id="manual__1",
        task_id="start_vm",
        resource="libvirt://lab/cache1",
        confidence=0.8,
        severity=Severity.HIGH,
        evidence=[
            "Airflow: run manual__1 of lab_deploy succeeded (ended 2026-12-01T07:59:00Z)",
            f"libvirt: test:///lab.xml listed {listed} domains at {at.isoformat()}; 'cache1' is {state}",
        ],
        detected_at=at,
        inferred=True,
    )


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["findings", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_recorded_once_then_raised_again_only_on_change(ledger: Ledger) -> None:
    finding_id, raised = ledger.record_shadow_error(_finding())
    assert raised
    # the next scans see the same problem: numbers and times in the evidence differ, nothing else
    assert ledger.record_shadow_error(_finding(at=T0 + timedelta(minutes=15), listed=4)) == (
        finding_id,
        False,
    )
    assert ledger.set_finding_state(finding_id, "acknowledged", "known: cache1 is parked")
    assert ledger.record_shadow_error(_finding(at=T0 + timedelta(minutes=30))) == (finding_id, False)
    entry = ledger.shadow_error(finding_id)
    assert entry is not None
    assert (entry["state"], entry["state_note"], entry["seen_count"]) == (
        "acknowledged",
        "known: cache1 is parked",
        3,
    )
    # it changed: cache1 is now paused -- open again, raised again
    assert ledger.record_shadow_error(_finding("paused", at=T0 + timedelta(minutes=45))) == (finding_id, True)
    entry = ledger.shadow_error(finding_id)
    assert entry is not None
    assert (entry["state"], entry["raise_count"], entry["inferred"]) == ("open", 2, True)
    assert entry["state_note"] == "changed since it was set aside"
    # an open finding that changes is not raised twice: it was never set aside
    assert ledger.record_shadow_error(_finding("crashed", at=T0 + timedelta(minutes=60))) == (
        finding_id,
        False,
    )


def test_a_resolved_finding_stays_resolved_while_unchanged(ledger: Ledger) -> None:
    finding_id, _ = ledger.record_shadow_error(_finding())
    assert ledger.set_finding_state(finding_id, "resolved")
    assert ledger.record_shadow_error(_finding(at=T0 + timedelta(hours=1))) == (finding_id, False)
    assert ledger.shadow_errors(state="resolved")[0]["id"] == finding_id
    assert ledger.shadow_errors(state="open") == []
    assert not ledger.set_finding_state(999, "resolved")
    with pytest.raises(ValueError, match="state must be one of"):
        ledger.set_finding_state(finding_id, "closed")


def test_raised_findings_flow_into_the_escalation_outbox(ledger: Ledger) -> None:
    first = hand_off([_finding()], ledger)
    again = hand_off([_finding(at=T0 + timedelta(minutes=15))], ledger)
    (finding_id,) = [e["id"] for e in ledger.shadow_errors()]
    ledger.set_finding_state(finding_id, "acknowledged")
    quiet = hand_off([_finding(at=T0 + timedelta(minutes=30))], ledger)
    changed = hand_off([_finding("paused", at=T0 + timedelta(minutes=45))], ledger)
    assert [h.escalated for h in (first, again, quiet, changed)] == [1, 0, 0, 1]
    titles = [e["title"] for e in ledger.pending_escalations()]
    assert titles == ["Shadow error vm_not_running in lab_deploy: libvirt://lab/cache1"] * 2


def test_cli_list_show_ack_resolve_reopen(
    ledger: Ledger, ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    finding_id, _ = ledger.record_shadow_error(_finding())
    other = _finding().model_copy(
        update={"resource": "libvirt://lab/db1", "type": ShadowErrorType.VM_NOT_CREATED}
    )
    other_id, _ = ledger.record_shadow_error(other)
    code, out, _ = _cli(capsys, "list", "--ledger", ledger_url)
    assert code == 0
    assert "vm_not_running (inferred)" in out
    assert out.rstrip().endswith("2 findings")

    code, out, _ = _cli(capsys, "ack", str(finding_id), "--note", "parked on purpose", "--ledger", ledger_url)
    assert (code, out) == (0, f"finding {finding_id}: acknowledged\n")
    code, out, _ = _cli(capsys, "resolve", str(other_id), "--ledger", ledger_url, "--json")
    assert json.loads(out) == {"id": other_id, "state": "resolved", "note": None}

    code, out, _ = _cli(capsys, "list", "--state", "open", "--ledger", ledger_url)
    assert out == "No findings.\n"
    code, out, _ = _cli(capsys, "list", "--state", "acknowledged", "--json", "--ledger", ledger_url)
    listed = [json.loads(line) for line in out.splitlines()]
    assert [(f["id"], f["state"], f["state_note"]) for f in listed] == [
        (finding_id, "acknowledged", "parked on purpose")
    ]
    code, out, _ = _cli(capsys, "show", str(finding_id), "--ledger", ledger_url)
    assert code == 0
    assert "State:       acknowledged since" in out
    assert "(parked on purpose)" in out
    assert "'cache1' is shut off" in out

    code, out, _ = _cli(capsys, "reopen", str(finding_id), "--ledger", ledger_url)
    assert code == 0
    assert ledger.shadow_error(finding_id)["state"] == "open"  # type: ignore[index]


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["show", "42"], 1, "no finding 42 in the ledger"),
        (["ack", "42"], 1, "no finding 42 in the ledger"),
        (["ack", "abc"], 2, "not a whole number"),
        (["list", "--state", "closed"], 2, "invalid choice"),
    ],
)
def test_cli_bad_input_and_unknown_findings(
    ledger: Ledger,
    ledger_url: str,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    code: int,
    message: str,
) -> None:
    ledger.record_shadow_error(_finding())
    try:
        got = main(["findings", *argv, "--ledger", ledger_url])
    except SystemExit as exc:
        got = int(exc.code or 0)
    _, err = capsys.readouterr()
    assert got == code
    assert message in err
    assert "Traceback" not in err


def test_cli_an_unusable_ledger_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _cli(capsys, "ack", "1", "--ledger", f"sqlite:///{tmp_path / 'nope' / 'ledger.db'}")
    assert code == 2
    assert len(err.strip().splitlines()) == 1


def test_evidence_in_the_ledger_leaks_no_canary(ledger: Ledger, ledger_url: str, capsys: Any) -> None:
    from support.canaries import all_canaries, assert_no_canary, combined_text

    finding = _finding().model_copy(update={"evidence": ["OpenLineage errorMessage: " + combined_text()]})
    finding_id, _ = ledger.record_shadow_error(finding)
    code, out, _ = _cli(capsys, "show", str(finding_id), "--json", "--ledger", ledger_url)
    assert code == 0
    assert_no_canary(out, all_canaries())
