"""Each recovery operator in real Airflow runs (``dag.test()``, what ``airflow dags test`` does): the
recovery DAG on a real failed run of ``dagtest_target``, through each of its branches.

Clearing a failed run through the REST API needs an API server; that part runs with a real scheduler in
``tests/dags/test_e2e_recovery.py``. Here the execute step runs as a dry run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.airflow_harness import run_dag_tests

ROOT = Path(__file__).resolve().parents[2]
NETWORK_ERROR = "read tcp 10.0.0.7:46000->203.0.113.10:443: read: connection reset by peer"
VAULT_ERROR = (
    "Error making API request. URL: GET https://vault.example.com:8200/v1/secret/data/kcli "
    "Code: 403. Errors: * permission denied"
)
RECOVERY = "qubinode_failure_recovery"


def form(**conf: Any) -> dict[str, Any]:
    """A conf as the trigger form sends it (every param present)."""
    base = {
        "failed_dag_id": "dagtest_target",
        "failed_task_id": "fetch",
        "failed_run_id": "$target_fail.run_id",
        "failure_message": NETWORK_ERROR,
        "enable_auto_recovery": True,
        "dry_run": False,
    }
    return {**base, **conf}


SCENARIOS = [
    {"name": "target_fail", "dag_id": "dagtest_target", "conf": {"fail": True}},
    {
        # started by the notifier: its conf, with the fingerprint of the incident it recorded
        "name": "from_notifier",
        "dag_id": RECOVERY,
        "conf": {
            "failed_dag_id": "dagtest_target",
            "failed_task_id": "fetch",
            "failed_run_id": "$target_fail.run_id",
            "failed_try_number": 1,
            "fingerprint": "$incident:dagtest_target",
            "failure_message": f"AirflowException: Bash command failed.\n{NETWORK_ERROR}",
            "dry_run": True,
        },
    },
    {"name": "dry_run", "dag_id": RECOVERY, "conf": form(dry_run=True)},
    {"name": "escalate", "dag_id": RECOVERY, "conf": form(failure_message=VAULT_ERROR)},
    {
        "name": "approval",
        "dag_id": RECOVERY,
        "conf": form(enable_auto_recovery=False),
        # the approval itself waits for a person (answered through the REST API in the e2e test)
        "mark_success": "approve|execute|verify|escalate|report",
    },
    {"name": "unknown_dag", "dag_id": RECOVERY, "conf": form(failed_dag_id="no_such_dag")},
    {
        "name": "unknown_run",
        "dag_id": RECOVERY,
        "conf": form(failed_run_id="manual__1999-01-01T00:00:00+00:00"),
    },
    {"name": "empty_message", "dag_id": RECOVERY, "conf": form(failure_message="  ")},
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    dag_files = [
        ROOT / "dags" / "qubinode_failure_recovery.py",
        ROOT / "tests/operators/dags/dagtest_target.py",
    ]
    return run_dag_tests(tmp_path_factory, SCENARIOS, dag_files)


def states(result: dict[str, Any]) -> dict[str, str | None]:
    return {task: info["state"] for task, info in result["tasks"].items()}


def test_the_target_run_failed(runs):
    assert runs["target_fail"]["state"] == "failed"
    assert states(runs["target_fail"]) == {
        "prepare": "success",
        "fetch": "failed",
        "publish": "upstream_failed",
    }


def test_diagnose_reuses_the_notifiers_diagnosis_without_counting_again(runs):
    result = runs["from_notifier"]
    diagnose = result["xcoms"]["diagnose"]["return_value"]
    assert diagnose["source"] == "ledger (recorded by the notifier)"
    assert diagnose["task"]["try_number"] == 1
    assert diagnose["failure"]["run_id"] == runs["target_fail"]["run_id"]
    incident = runs.ledger().get_incident(diagnose["diagnosis"]["fingerprint"])
    assert incident.occurrences == 1
    assert incident.root_cause.value == diagnose["diagnosis"]["root_cause"]


def test_a_form_started_diagnosis_is_recorded_once_per_failure(runs):
    # the notifier saw the failing command's output (the in-memory task log under `dags test`) and
    # recorded the network failure: the forms that paste the same error do not count it again
    diagnosed = [runs[name]["xcoms"]["diagnose"]["return_value"] for name in ("dry_run", "approval")]
    assert [d["source"] for d in diagnosed] == ["failure_message (already recorded)"] * 2
    assert diagnosed[0]["diagnosis"]["root_cause"] == "network"
    incident = runs.ledger().get_incident(diagnosed[0]["diagnosis"]["fingerprint"])
    assert incident.occurrences == 1
    # a pasted error the notifier did not see is a new diagnosis of that run, recorded by the form
    escalated = runs["escalate"]["xcoms"]["diagnose"]["return_value"]
    assert escalated["source"] == "failure_message (recorded now)"
    assert runs.ledger().get_incident(escalated["diagnosis"]["fingerprint"]).occurrences == 1


def test_dry_run_goes_the_automatic_way_and_runs_nothing(runs):
    result = runs["dry_run"]
    assert result["state"] == "success"
    assert states(result) == {
        "diagnose": "success",
        "plan": "success",
        "decide": "success",
        "auto_execute": "success",
        "approve": "skipped",
        "escalate_only": "skipped",
        "execute": "skipped",
        "verify": "skipped",
        "escalate": "skipped",
        "report": "success",
    }
    plan = result["xcoms"]["plan"]["return_value"]["plan"]
    recommended = plan["options"][plan["recommended_index"]]
    assert recommended["action"] == "retry-from-failure"
    assert recommended["action_args"]["task_ids"] == ["fetch"]
    assert result["xcoms"]["decide"]["decision"]["route"] == "auto"
    attempt = result["xcoms"]["execute"]["attempt"]
    assert attempt["outcome"] == "dry_run"
    assert attempt["detail"].startswith("dry run: would run retry-from-failure")
    report = result["xcoms"]["report"]["return_value"]
    assert report["outcome"] == "dry_run"
    assert "retry-from-failure" in Path(report["report_path"]).read_text()


def test_a_credential_failure_is_escalated_to_the_outbox_and_a_report(runs):
    result = runs["escalate"]
    assert result["state"] == "success"
    task_states = states(result)
    assert task_states["escalate_only"] == "success"
    assert task_states["execute"] == task_states["verify"] == "skipped"
    assert task_states["escalate"] == "success"
    decision = result["xcoms"]["decide"]["decision"]
    assert decision["route"] == "escalate"
    assert "carried out by a person" in decision["reasons"][0]
    escalation = result["xcoms"]["escalate"]["return_value"]
    assert escalation["first"] is True
    report = Path(escalation["report_path"]).read_text()
    assert "credential failure in dagtest_target.fetch" in report
    assert "vault token lookup" in report
    fingerprint = result["xcoms"]["diagnose"]["return_value"]["diagnosis"]["fingerprint"]
    ledger = runs.ledger()
    assert ledger.get_incident(fingerprint).state.value == "escalated"
    sent = ledger.incident_detail(fingerprint)["escalations"]
    assert [(e["status"], e["reference"]) for e in sent] == [("sent", escalation["report_path"])]
    assert result["xcoms"]["report"]["return_value"]["outcome"] == "escalated"


def test_auto_recovery_off_asks_for_approval_with_the_dry_run_plan(runs):
    result = runs["approval"]
    decision = result["xcoms"]["decide"]["decision"]
    assert decision["route"] == "approval"
    assert "automatic recovery is off for this run (enable_auto_recovery)" in decision["reasons"]
    assert states(result)["auto_execute"] == states(result)["escalate_only"] == "skipped"
    body = result["xcoms"]["decide"]["approval_body"]
    for expected in (
        "## Recovery needs your approval",
        "### Dry run:",
        "Would run `retry-from-failure`",
        "**Risk:** low",
        "**Rollback**",
        "## Recovery plan: network failure",
    ):
        assert expected in body


@pytest.mark.parametrize(
    ("scenario", "reason"),
    [
        ("unknown_dag", "Invalid recovery input: unknown DAG 'no_such_dag': Airflow has no DAG with this id"),
        ("unknown_run", "Invalid recovery input: DAG 'dagtest_target' has no run 'manual__1999-01-01"),
        ("empty_message", "Invalid recovery input: failure_message is empty"),
    ],
)
def test_wrong_input_fails_the_first_task_with_a_clear_message(runs, scenario, reason):
    result = runs[scenario]
    assert result["state"] == "failed"
    task_states = states(result)
    assert task_states["diagnose"] == "failed"
    assert result["tasks"]["diagnose"]["try_number"] == 1
    assert task_states["plan"] == "upstream_failed"
    assert task_states["report"] == "failed"
    assert reason in runs.section(scenario)
