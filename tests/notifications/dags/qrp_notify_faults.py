"""Task callbacks while everything around them is broken (the test sets up the faults)."""

from __future__ import annotations

import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.notifications import RecoveryNotifier


def _define_vm() -> None:
    raise ConnectionRefusedError(
        "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': Connection refused"
    )


with DAG(
    "qrp_notify_faults",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    default_args={
        "retries": 1,
        "retry_delay": datetime.timedelta(seconds=1),
        # 8 s: the hanging probe and the locked ledger each take their share; what is left still
        # diagnoses on a loaded 2-core machine (at 2 s a CI run under load rescued it unanalysed)
        "on_retry_callback": RecoveryNotifier(budget_seconds=8),
        "on_failure_callback": RecoveryNotifier(budget_seconds=8),
    },
):
    PythonOperator(task_id="define_vm", python_callable=_define_vm)
    BashOperator(task_id="healthy", bash_command="echo fine")
