"""End to end, with a real scheduler: scheduler, DAG processor, API server and triggerer started by the
test (SQLite, LocalExecutor) in a temporary AIRFLOW_HOME, torn down whatever happens.

All scenarios start together and are checked afterwards:

- ``example_kcli_vm_deploy``: ``wait_for_ssh`` fails once; the RecoveryNotifier records the incident and
  starts the recovery DAG, which diagnoses a transient network failure, clears the failed task through
  the REST API and verifies: the original run ends in success, the upstream tasks ran once.
- ``example_credential_failure``: the retry policy fails the task on its first try (``retries=3``); the
  recovery run escalates.
- ``example_flaky_network``: the retry policy retries the reset connection after the network delay.
- ``e2e_same_failure``: two runs failing the same way make one incident with two occurrences.
- ``e2e_needs_approval``: a recovery started like the trigger form with automatic recovery off waits for
  a person; the test reads the approval request (the plan's Markdown) and approves it through the REST
  API; the run is resumed and succeeds. Three more failed runs of it: one whose recovery is rejected
  (escalated, naming who rejected), one whose approval nobody answers (the default, Reject, applies
  after ``approval_timeout_minutes``: escalated, saying so), and one a person re-ran before approving
  (the approved retry finds nothing to clear: "already handled").
- Bad trigger-form input: an unknown DAG id fails the recovery run at its first task with one line,
  no traceback; an id longer than Airflow allows is refused by the params schema when the run is made.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from local_airflow import LocalAirflow, prepare_dags_folder  # noqa: E402

from qubinode_recovery_provider.airflow_api import AirflowAPIError  # noqa: E402

RECOVERY = "qubinode_failure_recovery"
KCLI = "example_kcli_vm_deploy"
CREDENTIAL = "example_credential_failure"
FLAKY = "example_flaky_network"
SAME = "e2e_same_failure"
APPROVAL = "e2e_needs_approval"
TIMEOUT = 240

pytestmark = pytest.mark.integration


#: The approval timeout of this deployment: long enough for the test to answer the others.
APPROVAL_TIMEOUT_MINUTES = 1.0
MIRROR_ERROR = "curl: (7) Failed to connect to mirror.example.com port 443: Connection refused"


def form_conf(dag_id: str, failed_run: str, task_id: str = "sync_mirror", **extra: Any) -> dict[str, Any]:
    """The conf of a recovery run started from the trigger form, automatic recovery off."""
    conf = {
        "failed_dag_id": dag_id,
        "failed_task_id": task_id,
        "failed_run_id": failed_run,
        "failure_message": MIRROR_ERROR,
        "enable_auto_recovery": False,
        "dry_run": False,
    }
    return {**conf, **extra}


def ask_for_approval(airflow: LocalAirflow, failed_run: str) -> str:
    """Start a recovery for a failed run of the approval DAG like the trigger form would and wait until
    its approval request waits for a person; return the recovery run's id."""
    run_id = airflow.trigger(RECOVERY, conf=form_conf(APPROVAL, failed_run))

    def asked() -> bool:
        return airflow.task_instances(RECOVERY, run_id).get("approve", {}).get("state") == "awaiting_input"

    airflow.wait_until("the approval request", asked, TIMEOUT, interval=2)
    return run_id


def approve_when_asked(airflow: LocalAirflow, failed_run: str, choice: str = "Approve") -> dict[str, Any]:
    """Ask for the approval, read the request and answer it with ``choice``."""
    run_id = ask_for_approval(airflow, failed_run)
    request = airflow.hitl_detail(RECOVERY, run_id, "approve")
    answer = answer_when_parked(airflow, run_id, choice)
    return {"run_id": run_id, "request": request, "answer": answer}


def answer_when_parked(airflow: LocalAirflow, run_id: str, choice: str) -> dict[str, Any]:
    """Answer the approval of ``run_id`` as a person would, not before the scheduler has seen the task
    parked: Airflow 3.3.2 fails an approval task whose answer lands before the scheduler processed the
    executor's event of the parking ("finished with state success, but the task instance's state
    attribute is queued/running")."""
    parked = f"TaskInstance Finished: dag_id={RECOVERY}, task_id=approve, run_id={run_id},"

    def scheduler_saw_it_parked() -> bool:
        return parked in (airflow.home / "scheduler.log").read_text(encoding="utf-8", errors="replace")

    airflow.wait_until("the approval seen parked", scheduler_saw_it_parked, TIMEOUT, interval=1)
    return airflow.respond_hitl(RECOVERY, run_id, "approve", choice)


def rerun_by_hand(airflow: LocalAirflow, failed_run: str) -> str:
    """What a person does in the UI before the approval comes: clear the failed task, so it runs again;
    return the run's state once the task ran again."""
    airflow.client.clear_task_instances(  # the UI's Clear: the task and what comes after it
        APPROVAL, dag_run_id=failed_run, task_ids=["sync_mirror"], include_downstream=True
    )

    def ran_again() -> bool:  # (clearing sets the try number at once; the state comes with the run)
        sync = airflow.task_instances(APPROVAL, failed_run).get("sync_mirror", {})
        return sync.get("try_number") == 2 and sync.get("state") in ("success", "failed")

    airflow.wait_until("the re-run of the failed task", ran_again, TIMEOUT, interval=2)
    return airflow.wait_for_run(APPROVAL, failed_run, TIMEOUT)


def refused_trigger(airflow: LocalAirflow, conf: dict[str, Any]) -> int | None:
    """The status with which the API refuses to start a recovery run with ``conf`` (None: it started).

    A 5xx is asked again (three tries): it is no refusal but the API server's SQLite write timing out
    (``database is locked`` after 5 s) while the scheduler and the task processes write beside it."""
    status: int | None = None
    for _ in range(3):
        try:
            airflow.trigger(RECOVERY, conf=conf)
        except AirflowAPIError as exc:
            status = exc.status_code
            if status is None or status < 500:
                return status
        else:
            return None
    return status


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
        "AIRFLOW__QUBINODE_RECOVERY__APPROVAL_TIMEOUT_MINUTES": str(APPROVAL_TIMEOUT_MINUTES),
    }
    airflow = LocalAirflow(base / "home", dags, extra_env=env)
    with airflow:
        airflow.wait_ready([RECOVERY, KCLI, CREDENTIAL, FLAKY, SAME, APPROVAL])
        runs = {
            KCLI: airflow.trigger(KCLI),
            CREDENTIAL: airflow.trigger(CREDENTIAL),
            FLAKY: airflow.trigger(FLAKY),
            APPROVAL: airflow.trigger(APPROVAL),
            "reject": airflow.trigger(APPROVAL),
            "unanswered": airflow.trigger(APPROVAL),
            "rerun": airflow.trigger(APPROVAL),
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
    for key in ("approval", "reject", "unanswered", "rerun"):
        out[f"{key}_failed"] = airflow.wait_for_run(APPROVAL, runs[APPROVAL if key == "approval" else key])
    out["unanswered_recovery"] = ask_for_approval(airflow, runs["unanswered"])  # its clock starts first
    out["approval"] = approve_when_asked(airflow, runs[APPROVAL])
    out["reject"] = approve_when_asked(airflow, runs["reject"], "Reject")
    rerun_recovery = ask_for_approval(airflow, runs["rerun"])
    out["rerun_state"] = rerun_by_hand(airflow, runs["rerun"])
    answer_when_parked(airflow, rerun_recovery, "Approve")
    out["unknown_dag"] = airflow.trigger(RECOVERY, conf=form_conf("build_vms", runs["reject"]))
    out["too_long_id_status"] = refused_trigger(airflow, form_conf("x" * 260, runs["reject"]))
    out["empty_form_status"] = refused_trigger(airflow, {})
    for key, run_id in (
        ("reject", out["reject"]["run_id"]),
        ("unanswered", out["unanswered_recovery"]),
        ("rerun", rerun_recovery),
        ("unknown_dag", out["unknown_dag"]),
    ):
        out[f"{key}_recovery_state"] = airflow.wait_for_run(RECOVERY, run_id, TIMEOUT)
        out[f"{key}_recovery_tasks"] = airflow.task_states(RECOVERY, run_id)
        out[f"{key}_report"] = airflow.xcom(RECOVERY, run_id, "report")
        out[f"{key}_escalation"] = airflow.xcom(RECOVERY, run_id, "escalate")
        out[f"{key}_approval"] = airflow.xcom(RECOVERY, run_id, "approve", "approval")
        out[f"{key}_run_note"] = airflow.client.get_dag_run(RECOVERY, run_id).get("note")
    out["unknown_dag_log"] = airflow.task_log(RECOVERY, out["unknown_dag"], "diagnose", 1)
    out["reject_final"] = airflow.run_state(APPROVAL, runs["reject"])
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
    out["kcli_recovery_note"] = airflow.client.get_dag_run(RECOVERY, out["kcli_recovery"]).get("note")
    out["kcli_wait_for_ssh_note"] = out["kcli_wait_for_ssh"].get("note")
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
    # the clear marked the task "qubinode-recovery: retry-from-failure"; the report then put the outcome
    assert story["kcli_wait_for_ssh"]["note"].startswith("qubinode: network (")
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
    # the short decision line sits outside Airflow's collapsed "Post Execute" group, which stays balanced
    lines = log.splitlines()
    (at,) = [n for n, line in enumerate(lines) if line.startswith("qubinode: network (")]
    assert lines[at].endswith(") - retry in 60s")
    assert lines[at - 1 : at + 2 : 2] == ["::endgroup::", "::group::Post Execute"]


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
    # the kcli and the credential incidents; the others record without starting recovery. The test
    # starts the approval scenarios' five: approve, reject, unanswered, re-run by hand, unknown DAG
    assert story["recovery_runs"] == 2 + 5


def test_a_rejected_recovery_runs_nothing_and_is_escalated_naming_who_rejected(story, ledger):
    assert story["reject"]["answer"]["chosen_options"] == ["Reject"]
    assert story["reject_approval"]["choice"] == "Reject"
    assert story["reject_approval"]["timed_out"] is False
    tasks = story["reject_recovery_tasks"]
    assert tasks["execute"][0] == "skipped"
    assert tasks["escalate"][0] == "success"
    reasons = story["reject_escalation"]["reasons"]
    assert any(r.startswith("the recovery was rejected in the Airflow UI by ") for r in reasons), reasons
    assert story["reject_report"]["outcome"] == "escalated"
    assert story["reject_final"] == "failed"  # nothing ran
    # the other approval scenarios share the incident (and may resolve it later): look for this escalation
    sent = ledger.incident_detail(story["reject_report"]["fingerprint"])["escalations"]
    assert story["reject_escalation"]["report_path"] in [e["reference"] for e in sent]
    assert story["reject_run_note"].startswith("**Escalated to a person**")


def test_an_unanswered_approval_applies_reject_and_escalates_saying_nobody_answered(story, ledger):
    answer = story["unanswered_approval"]
    assert answer["choice"] == "Reject"
    assert answer["timed_out"] is True
    assert answer["responded_by"] is None
    assert story["unanswered_recovery_tasks"]["execute"][0] == "skipped"
    reasons = story["unanswered_escalation"]["reasons"]
    assert any("nobody answered the approval request in time" in r for r in reasons), reasons
    assert story["unanswered_report"]["outcome"] == "escalated"
    sent = ledger.incident_detail(story["unanswered_report"]["fingerprint"])["escalations"]
    assert story["unanswered_escalation"]["report_path"] in [e["reference"] for e in sent]
    assert Path(story["unanswered_escalation"]["report_path"]).is_file()
    assert story["unanswered_run_note"].startswith("**Escalated to a person**")


def test_approving_a_failure_a_person_already_re_ran_runs_nothing_and_says_already_handled(story):
    assert story["rerun_state"] == "success"
    assert story["rerun_approval"]["choice"] == "Approve"
    assert story["rerun_recovery_tasks"]["execute"][0] == "skipped"
    assert story["rerun_recovery_tasks"]["escalate"][0] == "skipped"
    report = story["rerun_report"]
    assert report["outcome"] == "already_handled"
    assert "already handled: nothing left to clear" in report["headline"]
    assert story["rerun_run_note"].startswith("**Already handled: nothing ran**")


def test_an_unknown_dag_in_the_form_fails_the_first_task_with_one_line(story):
    assert story["unknown_dag_recovery_state"] == "failed"
    tasks = story["unknown_dag_recovery_tasks"]
    assert tasks["diagnose"][0] == "failed"
    assert tasks["plan"][0] == "upstream_failed"
    log = story["unknown_dag_log"]
    reason = "Invalid recovery input: unknown DAG 'build_vms': Airflow has no DAG with this id"
    assert f"AirflowFailException: {reason}" in log  # the task's one error, and no other exception
    assert "AirflowRuntimeError" not in log
    assert "API_SERVER_ERROR" not in log
    assert story["unknown_dag_run_note"].startswith("**Input rejected**")


def test_the_params_schema_refuses_what_the_form_cannot_send(story):
    assert story["too_long_id_status"] == 400
    assert story["empty_form_status"] == 400


def test_the_outcome_is_a_note_on_the_recovery_run_and_on_the_failed_task(story):
    note = story["kcli_recovery_note"]
    assert note.startswith("**Recovered**")
    assert "- Failed: `example_kcli_vm_deploy.wait_for_ssh`" in note
    assert "- Full report: `" in note
    task_note = story["kcli_wait_for_ssh_note"]
    assert task_note.startswith("qubinode: network (")
    assert story["kcli_recovery"] in task_note
    assert task_note.endswith("recovered.")
