"""End-to-end test DAG: fails the same way on every run (one incident, one occurrence per run)."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.notifications import RecoveryNotifier

with DAG(
    dag_id="e2e_same_failure",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 0, "on_failure_callback": RecoveryNotifier(trigger_recovery=False)},
):
    BashOperator(
        task_id="mount_share",
        bash_command=(
            "echo \"OSError: [Errno 28] No space left on device: '/var/lib/libvirt/images/db1.qcow2'\" >&2; "
            "exit 1"
        ),
    )
