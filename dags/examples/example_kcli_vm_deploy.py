"""Deploy a database VM, kcli style, with failure recovery wired in: the recovered example.

The shape of a Qubinode Navigator DAG: BashOperator tasks that run ``kcli`` and whose real error sits in
the task log. Here ``kcli`` is a stand-in (``bin/kcli``) that drives the libvirt test driver, so the
example runs anywhere; on a real host set ``KCLI=kcli``.

What the recovery provider adds (the part to copy into your own DAG):

- ``retry_policy=DiagnosisRetryPolicy()`` -- retries only what a retry can fix, with the delay the cause
  needs, and fails credential or configuration errors at once;
- ``on_failure_callback=RecoveryNotifier()`` -- diagnoses the failure, records the incident in the
  ledger and starts the ``qubinode_failure_recovery`` DAG for it;
- a checkpoint after ``create_vm`` (``api.record_checkpoint``) -- what the task left behind, offered to
  a person as the rollback option of a later plan.

``wait_for_ssh`` has no retries of its own: the VM is still booting the first time (the stand-in
refuses the first SSH connection), the task fails, and the recovery DAG diagnoses a transient network
failure, waits the delay it calls for and resumes this run from ``wait_for_ssh``: ``preflight`` and
``create_vm`` are not run again.
"""

from __future__ import annotations

import os
import shlex
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.notifications import RecoveryNotifier
from qubinode_recovery_provider.policies import DiagnosisRetryPolicy

VM = "db1"
IMAGE = "rhel9"
KCLI = (
    os.environ.get("KCLI")
    or f"{shlex.quote(sys.executable)} {shlex.quote(str(Path(__file__).parent / 'bin' / 'kcli'))}"
)
KCLI_ENV = {
    "KCLI_STATE_DIR": os.environ.get("QUBINODE_EXAMPLES_STATE_DIR", tempfile.gettempdir()) + "/kcli",
    "KCLI_LIBVIRT_URI": os.environ.get("KCLI_LIBVIRT_URI", "test:///default"),
}


def record_vm_checkpoint(context):
    """``on_success_callback`` of create_vm: remember the VM it created (for a later rollback)."""
    from qubinode_recovery_provider import api

    ti = context["ti"]
    api.record_checkpoint(ti.dag_id, ti.task_id, ti.run_id, {"vm_name": VM, "image": IMAGE, **KCLI_ENV})


with DAG(
    dag_id="example_kcli_vm_deploy",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["qubinode", "example", "kcli", "recovery"],
    doc_md=__doc__,
    default_args={
        "owner": "infra",
        "retries": 2,
        "retry_delay": timedelta(minutes=2),
        "retry_policy": DiagnosisRetryPolicy(),
        "on_failure_callback": RecoveryNotifier(),
        "env": KCLI_ENV,
        "append_env": True,
    },
):
    preflight = BashOperator(task_id="preflight", bash_command=f"{KCLI} list vm")
    create_vm = BashOperator(
        task_id="create_vm",
        bash_command=f"{KCLI} create vm {VM} -i {IMAGE} -P memory=2048 -P numcpus=2",
        on_success_callback=record_vm_checkpoint,
    )
    wait_for_ssh = BashOperator(task_id="wait_for_ssh", bash_command=f"{KCLI} ssh {VM} -- true", retries=0)
    configure_vm = BashOperator(
        task_id="configure_vm",
        bash_command=f"{KCLI} ssh {VM} -- sudo dnf -y install postgresql-server",
    )

    preflight >> create_vm >> wait_for_ssh >> configure_vm
