"""A failure callback set in default_args that starts the recovery run through the REST API."""

from __future__ import annotations

import datetime

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.notifications import RecoveryNotifier


def _read_secret() -> None:
    raise RuntimeError(
        "Error making API request. URL: PUT https://vault.example.com:8200/v1/auth/approle/login "
        "Code: 403. Errors: * permission denied (X-Vault-Token: hvs.CAESIJlWb3RlIGZvciB0aGUgdGVzdHMgb25seQ)",
    )


with DAG(
    "qrp_notify_api",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    default_args={"on_failure_callback": RecoveryNotifier(budget_seconds=10, trigger_via="api")},
):
    PythonOperator(task_id="read_vault_secret", python_callable=_read_secret)
