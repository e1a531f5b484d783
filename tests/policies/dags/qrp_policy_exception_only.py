"""``airflow dags test`` writes no attempt log: the policy decides on the exception text alone."""

from __future__ import annotations

import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.policies import DiagnosisRetryPolicy


def _login() -> None:
    raise PermissionError("git@github.com: Permission denied (publickey).")


with DAG(
    "qrp_policy_exception_only",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    default_args={
        "retries": 3,
        "retry_delay": datetime.timedelta(seconds=1),
        "retry_policy": DiagnosisRetryPolicy(),
    },
):
    PythonOperator(task_id="clone_repo", python_callable=_login)
    BashOperator(task_id="shell_step", bash_command='echo "something went wrong" >&2; exit 1', retries=1)
