"""The default escalation sink: ledger outbox plus a Markdown report, once per fingerprint and run."""

from __future__ import annotations

import pytest

from qubinode_recovery_provider.diagnosis import FailureAnalyzer
from qubinode_recovery_provider.escalation import escalate
from qubinode_recovery_provider.models import FailureEvent
from qubinode_recovery_provider.recovery import RecoveryPlanner, TaskConfig, execute
from qubinode_recovery_provider.recovery.policy import RecoveryPolicy
from qubinode_recovery_provider.store import Ledger

VAULT = (
    "Error making API request. URL: GET https://vault.example.com:8200/v1/secret/data/x "
    "Code: 403. Errors: * permission denied"
)


@pytest.fixture
def ledger(tmp_path):
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool") as opened:
        opened.migrate()
        yield opened


@pytest.fixture
def case(ledger):
    diagnosis = FailureAnalyzer().analyze(VAULT)
    ledger.record_failure(FailureEvent(dag_id="build_vm", task_id="fetch", exception_text=VAULT), diagnosis)
    task = TaskConfig(dag_id="build_vm", task_id="fetch", run_id="manual__2025-01-01T00:00:00+00:00")
    return diagnosis, RecoveryPlanner(events=None).plan_recovery(diagnosis, task)


def test_escalate_queues_once_and_writes_a_report(ledger, case, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__GITHUB_REPOSITORY", "")
    diagnosis, plan = case
    first = escalate(
        ledger, plan, ["no safe automatic option"], diagnosis=diagnosis, directory=tmp_path / "r"
    )
    again = escalate(ledger, plan, ["verification failed"], diagnosis=diagnosis, directory=tmp_path / "r")
    assert (first.first, again.first) == (True, False)
    assert first.report_path == again.report_path
    report = (tmp_path / "r").joinpath(first.report_path.rsplit("/", 1)[-1]).read_text()
    assert report.startswith("# [qubinode-recovery] credential failure in build_vm.fetch\n")
    assert "- Root cause: credential" in report
    assert "**Escalated:** verification failed" in report
    detail = ledger.incident_detail(plan.fingerprint)
    assert detail["incident"]["state"] == "escalated"
    assert [(e["status"], e["reference"]) for e in detail["escalations"]] == [("sent", first.report_path)]


def test_with_github_configured_the_entry_stays_pending(ledger, case, tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__GITHUB_REPOSITORY", "my-org/incidents")
    _, plan = case
    result = escalate(ledger, plan, ["no safe automatic option"], directory=tmp_path)
    assert result.reference.startswith("pending GitHub issue")
    assert [e["status"] for e in ledger.pending_escalations()] == ["pending"]


def test_the_executors_breaker_escalation_and_the_sink_are_one_escalation(
    ledger, case, tmp_path, monkeypatch
):
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__GITHUB_REPOSITORY", "")
    _, plan = case
    attempt = execute(plan, ledger, RecoveryPolicy())  # the recommended option needs a person: escalated
    assert attempt.detail.startswith("escalated")
    result = escalate(ledger, plan, ["escalated by the recovery DAG"], directory=tmp_path)
    assert result.first is False
    escalations = ledger.incident_detail(plan.fingerprint)["escalations"]
    assert len(escalations) == 1
    assert escalations[0]["reference"] == result.report_path
