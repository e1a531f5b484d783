"""A DAG-level failure callback: no exception in its context, only the reason and the last task."""

from __future__ import annotations

import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.notifications import RecoveryNotifier

with DAG(
    "qrp_notify_dag_level",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    on_failure_callback=RecoveryNotifier(budget_seconds=10, trigger_via="api"),
):
    BashOperator(
        task_id="create_disk",
        bash_command=(
            'echo "qemu-img: /var/lib/libvirt/images/web1.qcow2: Could not create: '
            'No space left on device" >&2; exit 1'
        ),
    )
