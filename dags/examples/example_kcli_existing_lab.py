"""An existing-style lab DAG: kcli, virt-install and virsh in Bash tasks, and no declaration at all.

No task has a ``libvirt_domain`` outlet and the DAG has no ``qubinode_vm`` param: the shadow scan infers
what each task meant from its rendered command (and its OpenLineage ``sourceCode`` facet and log).
Every command swallows its error, as many real DAGs do, so the run is green whatever happened. On a
host where web1 runs, logs1 is shut off and idm does not exist:

- ``deploy_idm`` (``kcli create vm idm``): idm is absent -- ``vm_not_created``, marked inferred;
- ``install_logs`` (``virt-install --name logs1``): logs1 is shut off -- ``vm_not_running``, inferred;
- ``start_web`` (``virsh start web1``): web1 runs -- nothing to report;
- ``retire_old`` (``kcli delete vm -y oldvm``): a negative contract -- nothing to report.

Add the tag ``qubinode-no-infer`` (or the param ``qubinode_infer_vms=False``) to a DAG to turn the
inference off for it.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

with DAG(
    dag_id="example_kcli_existing_lab",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["qubinode", "example", "kcli"],
    doc_md=__doc__,
):
    deploy_idm = BashOperator(
        task_id="deploy_idm",
        bash_command=(
            "kcli create vm idm -i centos9stream -P memory=4096 -P numcpus=2 2>&1 "
            "|| echo 'kcli failed; assuming idm is already there'"
        ),
    )
    install_logs = BashOperator(
        task_id="install_logs",
        bash_command=(
            "virt-install --name logs1 --memory 1024 --vcpus 1 --import "
            "--disk /var/lib/libvirt/images/logs1.qcow2 --os-variant centos-stream9 "
            "--noautoconsole 2>&1 || true"
        ),
    )
    start_web = BashOperator(task_id="start_web", bash_command="virsh start web1 2>&1 || true")
    retire_old = BashOperator(task_id="retire_old", bash_command="kcli delete vm -y oldvm 2>&1 || true")
    deploy_idm >> install_logs >> start_web >> retire_old
