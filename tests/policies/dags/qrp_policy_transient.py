"""A shell task that fails on DNS: the policy retries with the cause's delay (capped at 1 s here)."""

from __future__ import annotations

import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.policies import DiagnosisRetryPolicy

with DAG(
    "qrp_policy_transient",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    default_args={
        "retries": 2,
        "retry_delay": datetime.timedelta(minutes=10),
        "retry_policy": DiagnosisRetryPolicy(max_delay_seconds=1),
    },
):
    BashOperator(
        task_id="pull_image",
        bash_command=(
            'echo "Error: initializing source docker://quay.io/x/y:latest: read tcp 10.0.0.7:46000->'
            '203.0.113.10:443: read: connection reset by peer" >&2; exit 125'
        ),
    )
