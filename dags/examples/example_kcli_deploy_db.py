"""Deploy the database VM on the lab host -- with a creation step that can silently do nothing.

``create_vm`` runs ``kcli create vm db1 ...`` and, like many real DAGs, swallows a non-zero exit so
that a re-run over an existing VM does not fail. When kcli is missing or broken the task still
succeeds, and Airflow reports a green run although no VM was created. The outlet
``libvirt_domain("db1", host="lab")`` is what lets the shadow scan notice: it reports
``vm_not_created`` for db1.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.assets import libvirt_domain

with DAG(
    dag_id="example_kcli_deploy_db",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["qubinode", "example", "kcli"],
    doc_md=__doc__,
):
    create_vm = BashOperator(
        task_id="create_vm",
        bash_command=(
            "kcli create vm db1 -i centos9stream -P memory=4096 -P numcpus=2 2>&1 "
            "|| echo 'kcli returned non-zero, assuming db1 already exists'"
        ),
        outlets=[libvirt_domain("db1", host="lab")],
    )
    configure_vm = BashOperator(
        task_id="configure_vm",
        bash_command="echo 'ansible-playbook -i db1, postgres.yml (simulated)'",
    )
    create_vm >> configure_vm
