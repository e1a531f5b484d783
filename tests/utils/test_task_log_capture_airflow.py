"""The failing command's own output reaches the diagnosis in every execution mode that runs here.

``qrp_capture_credential`` (``tests/utils/dags``): a BashOperator prints ``Permission denied
(publickey).`` to stderr and exits 255 (its exception says only "exit code 255"), ``retries=3``,
``DiagnosisRetryPolicy()`` and ``RecoveryNotifier()``. In each mode the task must be diagnosed
``credential`` and fail after ONE try:

- ``airflow dags test`` (:meth:`support.airflow_harness.AirflowHome.dags_test`): no attempt log file
  exists; the evidence is the task's in-memory log tail;
- a real scheduler with the LocalExecutor (``LocalAirflow`` of ``scripts/local_airflow.py``): the task
  runs in a child forked by the supervisor; the DAG's dump callback shows the capture working in that
  child.

Both homes start from the session's migrated metadata database, and every process goes through
:mod:`support.processes` (bounded, own session, whole tree reaped).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

import pytest
from capture_checks import (
    CANARY,
    DAG_ID,
    DAGS,
    EVIDENCE,
    SUMMARY,
    TASK_ID,
    assert_failed_once_on_credential,
    copy_dags,
    provider_env,
    read_dump,
)
from support.airflow_harness import LocalAirflow, new_home

pytestmark = pytest.mark.integration

DECISION = re.compile(r"Retry policy decision\s+\[task\] action=(\w+).*?reason=['\"](.*)$", re.MULTILINE)


def test_under_dags_test_the_in_memory_tail_decides_after_one_try(tmp_path: Path) -> None:
    airflow = new_home(tmp_path, dag_dirs=(DAGS,))
    home = airflow.home

    out = airflow.dags_test(DAG_ID, extra_env=provider_env(tmp_path), timeout=240).stdout

    decisions = DECISION.findall(out)
    assert [action for action, _ in decisions] == ["fail"], out[-5000:]
    reason = decisions[0][1]
    assert reason.startswith("qubinode: credential (")
    assert EVIDENCE in reason
    assert "[from the task log in memory (" in reason  # dags test writes no attempt log
    assert SUMMARY.findall(out) == ["credential"]  # the notifier saw the same evidence
    assert out.count(f"] {EVIDENCE} [") == 1  # the user's log shows the output line once, as before
    assert not list((home / "logs").rglob("attempt=*.log"))

    with sqlite3.connect(home / "airflow.db") as db:
        (current,) = db.execute(
            "select try_number, state from task_instance where dag_id=? and task_id=?", (DAG_ID, TASK_ID)
        ).fetchall()
        history = db.execute(
            "select count(*) from task_instance_history where dag_id=?", (DAG_ID,)
        ).fetchone()
        (xcom,) = db.execute(
            "select value from xcom where dag_id=? and key='qubinode_retry_decision'", (DAG_ID,)
        ).fetchone()
    assert current == (1, "failed")
    assert history == (0,)
    decision = json.loads(xcom)
    assert (decision["action"], decision["root_cause"]) == ("fail", "credential")
    assert decision["text_source"].startswith("task log in memory (")
    assert CANARY not in xcom

    dumps = read_dump(tmp_path)
    assert list(dumps) == ["try_1.json"]
    lines = dumps["try_1.json"]["lines"]
    assert EVIDENCE in lines
    assert "connecting to root@10.0.0.5 with token ***" in lines
    assert CANARY not in json.dumps(dumps)


def test_under_the_local_executor_the_task_fails_after_one_try(tmp_path: Path) -> None:
    dags = copy_dags(tmp_path)
    components = ("api-server", "scheduler", "dag-processor")
    with LocalAirflow(
        tmp_path / "airflow_home", dags, extra_env=provider_env(tmp_path), components=components
    ) as airflow:
        airflow.wait_ready([DAG_ID], timeout=240)
        run_id = airflow.trigger(DAG_ID)
        state = airflow.wait_for_run(DAG_ID, run_id, timeout=240)
        task_states = airflow.task_states(DAG_ID, run_id)
        xcom = airflow.xcom(DAG_ID, run_id, TASK_ID, "qubinode_retry_decision")
    assert_failed_once_on_credential(tmp_path / "airflow_home", state, task_states, xcom)

    # the capture worked in the process the supervisor forked for the task, not in this one
    dump = read_dump(tmp_path)["try_1.json"]
    assert dump["pid"] != os.getpid()
    assert dump["installed"] is True
    assert EVIDENCE in dump["lines"]
    assert CANARY not in json.dumps(dump)
