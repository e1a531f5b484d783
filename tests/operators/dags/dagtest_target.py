"""Test DAG: the failure the recovery operators work on. With conf ``{"fail": true}`` ``fetch`` fails with
a transient network error; otherwise the run succeeds. The notifier records failures in the ledger
without starting recovery runs (the tests start them)."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

from qubinode_recovery_provider.notifications import RecoveryNotifier

NETWORK_ERROR = "read tcp 10.0.0.7:46000->203.0.113.10:443: read: connection reset by peer"

with DAG(
    dag_id="dagtest_target",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    params={"fail": Param(False, type="boolean")},
    default_args={"retries": 0, "on_failure_callback": RecoveryNotifier(trigger_recovery=False)},
):
    prepare = BashOperator(task_id="prepare", bash_command="echo prepared")
    fetch = BashOperator(
        task_id="fetch",
        bash_command=(
            "{% if params.fail %}echo '" + NETWORK_ERROR + "' >&2; exit 1{% else %}echo fetched{% endif %}"
        ),
    )
    publish = BashOperator(task_id="publish", bash_command="echo published")
    prepare >> fetch >> publish
