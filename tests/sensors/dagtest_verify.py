"""Test DAG: the recovery sensor watching another run, in reschedule mode and deferrable."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, TriggerRule

from qubinode_recovery_provider.sensors import RecoveredRunSensor

with DAG(
    dag_id="dagtest_verify",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"target_run_id": Param("", type="string")},
):
    RecoveredRunSensor(
        task_id="wait_reschedule",
        target_dag_id="dagtest_target",
        target_run_id="{{ params.target_run_id }}",
        target_task_ids="fetch,publish",
        poke_interval=1,
        timeout=60,
    ) >> RecoveredRunSensor(
        task_id="wait_deferred",
        target_dag_id="dagtest_target",
        target_run_id="{{ params.target_run_id }}",
        target_task_ids=["fetch"],
        deferrable=True,
        poke_interval=1,
        timeout=60,
        trigger_rule=TriggerRule.ALL_DONE,
    )
