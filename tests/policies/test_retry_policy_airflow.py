"""DiagnosisRetryPolicy in real Airflow: ``airflow dags test`` of the DAGs in ``tests/policies/dags``.

With ``--use-executor`` the tasks run through the LocalExecutor and the real supervisor, which writes the
per-attempt log files the policy reads (a running API server serves the execution API). Plain
``airflow dags test`` writes no attempt log: the policy decides on the exception text and says so.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from support.airflow_harness import AirflowHome, api_home, new_home

pytestmark = pytest.mark.integration

DAGS = Path(__file__).parent / "dags"
DECISION = re.compile(r"Retry policy decision\s+\[task\] action=(\w+).*?reason=['\"](.*)$", re.MULTILINE)


def decisions(output: str) -> list[tuple[str, str]]:
    """(action, reason and the rest of the line) of every ``Retry policy decision`` Airflow logged."""
    return [(m.group(1), m.group(2)) for m in DECISION.finditer(output)]


def tries(home: AirflowHome, dag_id: str, task_id: str) -> tuple[list[int], tuple[int, str]]:
    """The try numbers archived in the task instance history, and the last try with its state."""
    history = home.query(
        "select try_number from task_instance_history where dag_id=? and task_id=? order by try_number",
        dag_id,
        task_id,
    )
    (current,) = home.query(
        "select try_number, state from task_instance where dag_id=? and task_id=?", dag_id, task_id
    )
    return [n for (n,) in history], current


def test_a_rejected_ssh_key_in_the_log_fails_the_task_after_one_try(tmp_path: Path) -> None:
    home, _ = api_home()
    env = {"AIRFLOW__QUBINODE_RECOVERY__STATE_DIR": str(tmp_path / "state")}
    result = home.dags_test("qrp_policy_credential", use_executor=True, extra_env=env)
    out = result.stdout
    (decision,) = decisions(out)
    action, reason = decision
    assert action == "fail", out[-4000:]
    assert reason.startswith("qubinode: credential (")
    assert "Permission denied (publickey)" in reason
    assert "[from the attempt log (" in reason
    assert tries(home, "qrp_policy_credential", "ssh_to_hypervisor") == ([], (1, "failed"))
    logs = list((home.home / "logs" / "dag_id=qrp_policy_credential").rglob("attempt=*.log"))
    assert [p.name for p in logs] == ["attempt=1.log"]
    (value,) = home.query(
        "select value from xcom where dag_id='qrp_policy_credential' and key='qubinode_retry_decision'"
    )
    stored = json.loads(value[0])
    assert (stored["action"], stored["root_cause"], stored["retryable"]) == ("fail", "credential", False)


def test_a_dns_failure_is_retried_with_the_causes_delay(tmp_path: Path) -> None:
    home, _ = api_home()
    env = {"AIRFLOW__QUBINODE_RECOVERY__STATE_DIR": str(tmp_path / "state")}
    result = home.dags_test("qrp_policy_transient", use_executor=True, extra_env=env)
    out = result.stdout
    found = decisions(out)
    # retries=2: the third try is the last, so no retry is promised there
    assert [a for a, _ in found] == ["retry", "retry", "default"], out[-4000:]
    for number, (_, reason) in enumerate(found, start=1):
        assert reason.startswith("qubinode: network (")
        assert "[from the attempt log (" in reason
        if number < 3:
            assert f"retry in 1s (try {number})" in reason
    assert "transient, but no retry is left (retries=2): the task fails here" in found[2][1]
    # task retry_delay is 10 minutes: the three tries ran because the policy asked for 1 s
    assert tries(home, "qrp_policy_transient", "pull_image") == ([1, 2], (3, "failed"))
    reasons = home.query(
        "select retry_reason, retry_delay_override from task_instance_history "
        "where dag_id='qrp_policy_transient' order by try_number"
    )
    assert [delay for _, delay in reasons] == [1, 1]
    assert all(r.startswith("qubinode: network (") for r, _ in reasons)


def test_without_an_attempt_log_the_exception_text_decides(tmp_path: Path) -> None:
    home = new_home(tmp_path, dag_dirs=(DAGS,))
    result = home.dags_test("qrp_policy_exception_only")
    out = result.stdout
    found = decisions(out)
    assert sorted(a for a, _ in found) == ["default", "default", "fail"], out[-4000:]
    fail_reason = next(r for a, r in found if a == "fail")
    assert "Permission denied (publickey)" in fail_reason
    assert "no attempt log on this machine: decided on the exception text only" in fail_reason
    default_reasons = [r for a, r in found if a == "default"]
    assert len(default_reasons) == 2  # shell_step: two tries, the exception says only "exit code 1"
    assert all("the task's retries apply" in r for r in default_reasons)
    assert tries(home, "qrp_policy_exception_only", "clone_repo") == ([], (1, "failed"))
    assert tries(home, "qrp_policy_exception_only", "shell_step") == ([1], (2, "failed"))
