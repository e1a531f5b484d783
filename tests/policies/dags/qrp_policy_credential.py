"""A shell task whose exception says only "exit code 255"; the log says the SSH key was rejected."""

from __future__ import annotations

import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.policies import DiagnosisRetryPolicy

with DAG(
    "qrp_policy_credential",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    default_args={"retries": 3, "retry_delay": datetime.timedelta(seconds=1)},
):
    BashOperator(
        task_id="ssh_to_hypervisor",
        bash_command='echo "root@10.0.0.5: Permission denied (publickey)." >&2; exit 255',
        retry_policy=DiagnosisRetryPolicy(),
    )
