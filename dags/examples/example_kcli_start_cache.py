"""Start the cache VM: a DAG without outlets that names its VM through the ``qubinode_vm`` param.

The shadow scan reads ``qubinode_vm`` from the run's conf (or the DAG's default params) as the VM a
successful run must leave running: here ``lab/cache1``. The start command swallows its error, so a run
can succeed while cache1 stays shut off -- the scan then reports ``vm_not_running``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

with DAG(
    dag_id="example_kcli_start_cache",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["qubinode", "example", "kcli"],
    params={
        "qubinode_vm": Param(
            "lab/cache1",
            type="string",
            description="host/name of the VM this run must leave running (read by the shadow scan)",
        )
    },
    doc_md=__doc__,
):
    BashOperator(
        task_id="start_vm",
        bash_command='kcli start vm "$(basename {{ params.qubinode_vm }})" 2>&1 || true',
    )
