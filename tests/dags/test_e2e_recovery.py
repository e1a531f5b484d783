"""End to end, with a real scheduler: scheduler, DAG processor, API server and triggerer started by the
test (SQLite, LocalExecutor) in a temporary AIRFLOW_HOME, torn down whatever happens.

All scenarios start together and are checked afterwards:

- ``example_kcli_vm_deploy``: ``wait_for_ssh`` fails once; the RecoveryNotifier records the incident and
  starts the recovery DAG, which diagnoses a transient network failure, clears the failed task through
  the REST API and verifies: the original run ends in success, the upstream tasks ran once.
- ``example_credential_failure``: the retry policy fails the task on its first try (``retries=3``); the
  recovery run escalates.
- ``example_flaky_network``: the retry policy retries the DNS failure after the network delay.
- ``e2e_same_failure``: two runs failing the same way make one incident with two occurrences.
- ``e2e_needs_approval``: a recovery started like the trigger form with automatic recovery off waits for
  a person; the test reads the approval request (the plan's Markdown) and approves it through the REST
  API; the run is resumed and succeeds.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from local_airflow import LocalAirflow, prepare_dags_folder  # noqa: E402

RECOVERY = "qubinode_failure_recovery"
KCLI = "example_kcli_vm_deploy"
CREDENTIAL = "example_credential_failure"
FLAKY = "example_flaky_network"
SAME = "e2e_same_failure"
APPROVAL = "e2e_needs_approval"
TIMEOUT = 240

pytestmark = pytest.mark.integration


def approve_when_asked(airflow: LocalAirflow, failed_run: str) -> dict[str, Any]:
    """Start a recovery for the approval scenario like the trigger form would, wait for its approval
    request, read it and approve it."""
    conf = {
        "failed_dag_id": APPROVAL,
        "failed_task_id": "sync_mirror",
        "failed_run_id": failed_run,
        "failure_message": "curl: (7) Failed to connect to mirror.example.com port 443: Connection refused",
        "enable_auto_recovery": False,
        "dry_run": False,
    }
    run_id = airflow.trigger(RECOVERY, conf=conf)

    def asked() -> bool:
        return airflow.task_instances(RECOVERY, run_id).get("approve", {}).get("state") == "awaiting_input"

    airflow.wait_until("the approval request", asked, TIMEOUT, interval=2)
    request = airflow.hitl_detail(RECOVERY, run_id, "approve")
    answer = airflow.respond_hitl(RECOVERY, run_id, "approve", "Approve")
    return {"run_id": run_id, "request": request, "answer": answer}


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("e2e")
    dags = prepare_dags_folder(
        base / "dags",
        [
            ROOT / "dags" / "qubinode_failure_recovery.py",
            ROOT / "dags" / "examples" / f"{KCLI}.py",
            ROOT / "dags" / "examples" / f"{CREDENTIAL}.py",
            ROOT / "dags" / "examples" / f"{FLAKY}.py",
            ROOT / "dags" / "examples" / "bin",
            *sorted((ROOT / "tests" / "dags" / "e2e_dags").glob("*.py")),
        ],
    )
    state = base / "state"
    state.mkdir()
    env = {
        "QUBINODE_EXAMPLES_STATE_DIR": str(state),
        # the machine runs four Airflow components and the tasks: give the notifier and the policy room
        # (their budgets are tested on their own; here a missed budget would hide the decision)
        # (15 s: the most Airflow's task_success_overtime of 20 s leaves the notifier)
        "AIRFLOW__QUBINODE_RECOVERY__NOTIFIER_BUDGET_SECONDS": "15",
        "AIRFLOW__QUBINODE_RECOVERY__POLICY_BUDGET_SECONDS": "20",
    }
    airflow = LocalAirflow(base / "home", dags, extra_env=env)
    with airflow:
        airflow.wait_ready([RECOVERY, KCLI, CREDENTIAL, FLAKY, SAME, APPROVAL])
        runs = {
            KCLI: airflow.trigger(KCLI),
            CREDENTIAL: airflow.trigger(CREDENTIAL),
            FLAKY: airflow.trigger(FLAKY),
            APPROVAL: airflow.trigger(APPROVAL),
            "same_1": airflow.trigger(SAME),
            "same_2": airflow.trigger(SAME),
        }
        out: dict[str, Any] = {"home": airflow.home, "runs": runs}
        try:
            _collect(airflow, runs, out)
        except BaseException:
            for name in airflow.components:
                print(f"--- {name} ---\n{airflow.log_tail(name, 60)}")
            raise
    return out


def _collect(airflow: LocalAirflow, runs: dict[str, str], out: dict[str, Any]) -> None:
    out["approval_failed"] = airflow.wait_for_run(APPROVAL, runs[APPROVAL], TIMEOUT)
    out["approval"] = approve_when_asked(airflow, runs[APPROVAL])
    for dag_id, key in ((CREDENTIAL, CREDENTIAL), (SAME, "same_1"), (SAME, "same_2")):
        out[f"{key}_state"] = airflow.wait_for_run(dag_id, runs[key], TIMEOUT)
    out["credential_recovery"] = airflow.recovery_run_for(CREDENTIAL, runs[CREDENTIAL])
    out["kcli_recovery"] = airflow.recovery_run_for(KCLI, runs[KCLI], TIMEOUT)
    # a recovery run ends after the run it resumed (its sensor waits for it): wait for those first
    for key in ("credential_recovery", "kcli_recovery"):
        out[f"{key}_state"] = airflow.wait_for_run(RECOVERY, out[key], TIMEOUT)
    out["approval_recovery_state"] = airflow.wait_for_run(RECOVERY, out["approval"]["run_id"], TIMEOUT)
    for dag_id, key in ((KCLI, KCLI), (FLAKY, FLAKY), (APPROVAL, APPROVAL)):
        out[f"{key}_state"] = airflow.wait_for_run(dag_id, runs[key], TIMEOUT)
    for key, dag_id, run_id in (
        ("kcli_tasks", KCLI, runs[KCLI]),
        ("credential_tasks", CREDENTIAL, runs[CREDENTIAL]),
        ("flaky_tasks", FLAKY, runs[FLAKY]),
        ("approval_tasks", APPROVAL, runs[APPROVAL]),
        ("kcli_recovery_tasks", RECOVERY, out["kcli_recovery"]),
        ("credential_recovery_tasks", RECOVERY, out["credential_recovery"]),
        ("approval_recovery_tasks", RECOVERY, out["approval"]["run_id"]),
    ):
        out[key] = airflow.task_states(dag_id, run_id)
    out["kcli_wait_for_ssh"] = airflow.task_instances(KCLI, runs[KCLI])["wait_for_ssh"]
    out["kcli_report"] = airflow.xcom(RECOVERY, out["kcli_recovery"], "report")
    out["kcli_attempt"] = airflow.xcom(RECOVERY, out["kcli_recovery"], "execute", "attempt")
    out["credential_decision"] = airflow.xcom(
        CREDENTIAL, runs[CREDENTIAL], "fetch_secret", "qubinode_retry_decision"
    )
    out["credential_escalation"] = airflow.xcom(RECOVERY, out["credential_recovery"], "escalate")
    out["flaky_first_try_log"] = airflow.task_log(FLAKY, runs[FLAKY], "pull_image", 1)
    out["approval_report"] = airflow.xcom(RECOVERY, out["approval"]["run_id"], "report")
    out["recovery_runs"] = len(airflow.runs(RECOVERY))


@pytest.fixture(scope="module")
def ledger(story):
    from qubinode_recovery_provider.store import Ledger

    home = story["home"]
    state = home / "qubinode_recovery"
    # a notifier that ran out of time under this load spools its write (exactly once, by the attempt's
    # key): replay what the deployment left in its spool, as the next ledger write there would
    with Ledger(f"sqlite:///{state / 'ledger.db'}", state / "spool") as opened:
        opened.flush_spool()
        yield opened


def test_a_task_that_fails_once_is_recovered_from_the_failed_task(story):
    assert story[f"{KCLI}_state"] == "success"
    assert story["kcli_tasks"] == {
        "preflight": ("success", 1),
        "create_vm": ("success", 1),
        "wait_for_ssh": ("success", 2),
        "configure_vm": ("success", 1),
    }
    assert story["kcli_wait_for_ssh"]["note"] == "qubinode-recovery: retry-from-failure"
    assert story["kcli_recovery_state"] == "success"
    assert story["kcli_recovery_tasks"]["verify"][0] == "success"
    assert story["kcli_recovery_tasks"]["escalate"][0] == "skipped"
    assert story["kcli_attempt"]["outcome"] == "succeeded"
    assert story["kcli_attempt"]["action"] == "retry-from-failure"
    assert story["kcli_attempt"]["action_args"]["delay_seconds"] == 60
    assert "cleared 2 task instance(s)" in story["kcli_attempt"]["detail"]
    assert story["kcli_report"]["outcome"] == "recovered"


def test_the_recovered_incident_is_resolved(story, ledger):
    fingerprint = story["kcli_report"]["fingerprint"]
    incident = ledger.get_incident(fingerprint)
    assert incident.state.value == "resolved"
    assert incident.root_cause.value == "network"
    assert incident.occurrences == 1


def test_a_credential_failure_uses_no_retries_and_is_escalated(story, ledger):
    assert story[f"{CREDENTIAL}_state"] == "failed"
    assert story["credential_tasks"]["fetch_secret"] == ("failed", 1)
    assert story["credential_decision"]["action"] == "fail"
    assert story["credential_decision"]["root_cause"] == "credential"
    assert story["credential_recovery_state"] == "success"
    assert story["credential_recovery_tasks"]["escalate"][0] == "success"
    assert story["credential_recovery_tasks"]["execute"][0] == "skipped"
    escalation = story["credential_escalation"]
    assert Path(escalation["report_path"]).is_file()
    assert ledger.get_incident(story["credential_decision"]["fingerprint"]).state.value == "escalated"


def test_a_transient_failure_is_retried_with_the_delay_of_its_cause(story):
    assert story[f"{FLAKY}_state"] == "success"
    assert story["flaky_tasks"]["pull_image"] == ("success", 2)
    log = story["flaky_first_try_log"]
    assert "Retry policy decision" in log
    assert "qubinode: network" in log
    assert "transient, retry in 60s (try 1)" in log


def test_the_same_failure_twice_is_one_incident_with_two_occurrences(story, ledger):
    assert story["same_1_state"] == story["same_2_state"] == "failed"
    incidents = [i for i in ledger.list_incidents() if SAME in i.dag_ids]
    assert len(incidents) == 1
    assert incidents[0].occurrences == 2


def test_an_approval_shows_the_plan_and_approving_it_recovers_the_run(story):
    assert story["approval_failed"] == "failed"
    request = story["approval"]["request"]
    assert request["options"] == ["Approve", "Reject"]
    body = request["body"]
    for expected in (
        "## Recovery needs your approval",
        "automatic recovery is off for this run",
        "Would run `retry-from-failure`",
        "**Risk:** low",
        "**Rollback**",
    ):
        assert expected in body
    assert story["approval"]["answer"]["chosen_options"] == ["Approve"]
    assert story["approval_recovery_state"] == "success"
    assert story["approval_recovery_tasks"]["execute"][0] == "success"
    assert story[f"{APPROVAL}_state"] == "success"
    assert story["approval_tasks"]["prepare"] == ("success", 1)
    assert story["approval_tasks"]["sync_mirror"] == ("success", 2)
    assert story["approval_report"]["outcome"] == "recovered"


def test_one_recovery_run_per_new_incident(story):
    # the kcli and the credential incidents; the others record without starting recovery, and the
    # approval scenario's run is started by the test
    assert story["recovery_runs"] == 3
