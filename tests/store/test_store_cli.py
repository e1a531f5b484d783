"""``qubinode-recovery incidents list | show``."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from store_workers import make_attempt, make_diagnosis, make_event
from support import processes

from qubinode_recovery_provider.cli import main
from qubinode_recovery_provider.models import AttemptOutcome, IncidentState, RecoveryPlan, RootCause
from qubinode_recovery_provider.store import Ledger

pytestmark = pytest.mark.usefixtures("isolated_config")


@pytest.fixture
def filled(ledger: Ledger, ledger_url: str) -> str:
    """A ledger with three incidents; returns its URL."""
    ledger.record_failure(make_event(dag_id="build_vm"), make_diagnosis("fp-virt"))
    ledger.record_failure(make_event(dag_id="deploy_vault", host="kvm-02"), make_diagnosis("fp-virt"))
    ledger.record_failure(
        make_event(dag_id="pull_images"),
        make_diagnosis("fp-net", root_cause=RootCause.NETWORK, summary="quay.io unreachable"),
    )
    ledger.record_failure(make_event(), make_diagnosis("fp-done", summary="fixed long ago"))
    ledger.set_incident_state("fp-done", IncidentState.RESOLVED)
    ledger.record_plan(RecoveryPlan(fingerprint="fp-virt", root_cause=RootCause.VIRTUALIZATION))
    ledger.begin_attempt(make_attempt("fp-virt:restart", fingerprint="fp-virt"))
    ledger.finish_attempt("fp-virt:restart", AttemptOutcome.FAILED, "unit masked")
    ledger.enqueue_escalation("fp-virt", "libvirtd will not start", "body", ["qubinode"])
    return ledger_url


def test_list_table(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incidents", "list", "--ledger", filled]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["ID", "STATE", "OCCURRENCES", "LAST"]
    rows = {line.split()[0]: line for line in out[1:-1]}
    assert len(rows) == 3
    assert out[-1] == "3 incidents"
    virt = next(line for line in out if "fp-virt" in line)
    assert "build_vm,deploy_vault" in virt
    assert " 2 " in virt
    assert "libvirtd is not running" in virt


def test_list_json_state_and_limit(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incidents", "list", "--ledger", filled, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["fingerprint"] for r in rows} == {"fp-virt", "fp-net", "fp-done"}
    assert main(["incidents", "list", "--ledger", filled, "--json", "--state", "resolved"]) == 0
    assert [json.loads(line)["fingerprint"] for line in capsys.readouterr().out.splitlines()] == ["fp-done"]
    assert main(["incidents", "list", "--ledger", filled, "--json", "--limit", "1"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_show_report_by_fingerprint_and_id(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incidents", "show", "fp-virt", "--ledger", filled]) == 0
    report = capsys.readouterr().out
    assert "Fingerprint:  fp-virt" in report
    assert "Occurrences:  2" in report
    assert "DAGs:         build_vm, deploy_vault" in report
    assert "Diagnoses (2, newest first)" in report
    assert "restart_service  failed" in report
    assert "unit masked" in report
    assert "#1  pending  libvirtd will not start" in report
    incident_id = report.splitlines()[0].split()[1]
    assert main(["incidents", "show", incident_id, "--ledger", filled, "--json"]) == 0
    detail = json.loads(capsys.readouterr().out)
    assert detail["incident"]["fingerprint"] == "fp-virt"
    assert len(detail["diagnoses"]) == 2
    assert detail["attempts"][0]["outcome"] == "failed"


def test_show_missing_exits_1(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incidents", "show", "no-such-thing", "--ledger", filled]) == 1
    assert "no incident 'no-such-thing'" in capsys.readouterr().err


@pytest.mark.parametrize(
    "url",
    [
        "definitely not a url",
        "mysql://u@h/db",
        "sqlite:////nonexistent/dir/ledger.db",
        "postgresql://postgres@127.0.0.1:1/nowhere",
    ],
)
def test_bad_ledger_url_exits_2_with_one_line(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incidents", "list", "--ledger", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qubinode-recovery: error: ")
    assert err.count("\n") == 1


def test_not_a_database_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("this is not SQLite\n" * 100)
    assert main(["incidents", "show", "1", "--ledger", f"sqlite:///{junk}"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_limit_must_be_positive(filled: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incidents", "list", "--ledger", filled, "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err


def test_configured_ledger_is_the_default(
    filled: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL", filled)
    assert main(["incidents", "list", "--json"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_default_sqlite_ledger_not_created_yet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["incidents", "list"]) == 0
    assert capsys.readouterr().out == "No incidents.\n"
    assert main(["incidents", "show", "1"]) == 1
    assert not (tmp_path / "airflow_home").exists()  # reading does not create the ledger


def test_default_sqlite_ledger_in_airflow_home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Ledger.from_config() as ledger:
        assert ledger.url.database == str(tmp_path / "airflow_home" / "qubinode_recovery" / "ledger.db")
        ledger.record_failure(make_event(), make_diagnosis())
    assert main(["incidents", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["fingerprint"] == "fp-virt-0001"


def test_module_entry_point(filled: str, tmp_path: Path) -> None:
    result = processes.run(
        [sys.executable, "-m", "qubinode_recovery_provider", "incidents", "list", "--ledger", filled],
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("3 incidents")


def test_store_and_incidents_cli_do_not_import_airflow() -> None:
    code = (
        "import sys, qubinode_recovery_provider.store, qubinode_recovery_provider.cli.incidents; "
        "sys.exit(any(m == 'airflow' or m.startswith('airflow.') for m in sys.modules))"
    )
    assert processes.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_show_limits_actions_and_commands_unless_verbose(
    ledger: Ledger, ledger_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    noisy = make_diagnosis("fp-noisy").model_copy(
        update={
            "recommended_actions": [f"action {n}" for n in range(5)],
            "diagnostic_commands": [f"command {n}" for n in range(6)],
        }
    )
    ledger.record_failure(make_event(), noisy)
    assert main(["incidents", "show", "fp-noisy", "--ledger", ledger_url]) == 0
    report = capsys.readouterr().out
    assert "- action 2" in report
    assert "action 3" not in report
    assert "$ command 3" in report
    assert "command 4" not in report
    assert "(2 more actions not shown (--verbose shows all))" in report
    assert main(["incidents", "show", "fp-noisy", "--ledger", ledger_url, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["diagnoses"][0]["diagnosis"]
    assert len(shown["recommended_actions"]) == 3
    assert shown["not_shown"] == {"recommended_actions": 2, "diagnostic_commands": 2}
    assert main(["incidents", "show", "fp-noisy", "--ledger", ledger_url, "--json", "--verbose"]) == 0
    full = json.loads(capsys.readouterr().out)["diagnoses"][0]["diagnosis"]
    assert len(full["recommended_actions"]) == 5
    assert "not_shown" not in full
