"""``RecoveredRunSensor`` in real Airflow runs (``dag.test()``): reschedule mode and deferrable, on a run
that succeeded and on one that failed."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.airflow_harness import run_dag_tests

ROOT = Path(__file__).resolve().parents[2]

SCENARIOS = [
    {"name": "target_fail", "dag_id": "dagtest_target", "conf": {"fail": True}},
    # dag.test() keeps a run's conf in the DAG's params: every scenario gives its own values
    {"name": "target_ok", "dag_id": "dagtest_target", "conf": {"fail": False}},
    {"name": "verify_ok", "dag_id": "dagtest_verify", "conf": {"target_run_id": "$target_ok.run_id"}},
    {"name": "verify_failed", "dag_id": "dagtest_verify", "conf": {"target_run_id": "$target_fail.run_id"}},
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    dag_files = [
        ROOT / "tests/operators/dags/dagtest_target.py",
        Path(__file__).with_name("dagtest_verify.py"),
    ]
    return run_dag_tests(tmp_path_factory, SCENARIOS, dag_files)


def states(result):
    return {task: info["state"] for task, info in result["tasks"].items()}


def test_the_sensor_succeeds_on_a_successful_run_in_both_modes(runs):
    result = runs["verify_ok"]
    assert states(result) == {"wait_reschedule": "success", "wait_deferred": "success"}
    verdict = result["xcoms"]["wait_reschedule"]["return_value"]
    assert verdict["run_state"] == "success"
    assert verdict["task_states"] == {"fetch": "success", "publish": "success"}
    assert result["xcoms"]["wait_deferred"]["return_value"]["recovered"] is True


def test_the_sensor_fails_on_a_failed_run_and_says_why(runs):
    result = runs["verify_failed"]
    assert states(result) == {"wait_reschedule": "failed", "wait_deferred": "failed"}
    verification = result["xcoms"]["wait_reschedule"]["verification"]
    assert verification["recovered"] is False
    run_id = runs["target_fail"]["run_id"]
    expected = f"run {run_id} of dagtest_target is failed (fetch failed, publish upstream_failed)"
    assert verification["reason"] == expected
    assert result["xcoms"]["wait_deferred"]["verification"]["task_states"] == {"fetch": "failed"}
    assert result["tasks"]["wait_reschedule"]["try_number"] == 1
