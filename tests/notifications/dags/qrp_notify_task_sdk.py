"""No API connection configured: the notifier starts the recovery run through the Task SDK."""

from __future__ import annotations

import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.notifications import RecoveryNotifier

with DAG(
    "qrp_notify_task_sdk",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    default_args={
        "retries": 1,
        "retry_delay": datetime.timedelta(seconds=1),
        "on_retry_callback": RecoveryNotifier(budget_seconds=10),
        "on_failure_callback": RecoveryNotifier(budget_seconds=10),
    },
):
    BashOperator(
        task_id="ansible_play",
        bash_command=(
            'echo "fatal: [web1]: UNREACHABLE! => {\\"changed\\": false, \\"msg\\": \\"Failed to connect '
            'to the host via ssh: ssh: connect to host 10.0.0.7 port 22: Connection reset by peer\\"}" >&2; '
            "exit 4"
        ),
    )
