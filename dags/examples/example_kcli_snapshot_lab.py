"""Snapshot the lab VMs, then report -- a run that is green although a task failed.

``report`` runs with ``trigger_rule="all_done"`` so that a report is written even when the snapshot
fails. Being the only leaf, it decides the run's state: the run succeeds with ``snapshot_vms`` failed.
The shadow scan reports that as ``state_mismatch``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(
    dag_id="example_kcli_snapshot_lab",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["qubinode", "example", "kcli"],
    doc_md=__doc__,
):
    snapshot = BashOperator(
        task_id="snapshot_vms",
        bash_command="echo 'virsh snapshot-create-as web1 nightly'; exit 1",
    )
    report = BashOperator(
        task_id="report",
        bash_command="echo 'snapshot report written'",
        trigger_rule="all_done",
    )
    snapshot >> report
