"""Deploy the web VM on the lab host, kcli style: preflight, ensure the VM, configure it.

``create_vm`` declares the VM it must leave behind as an outlet, ``libvirt_domain("web1", host="lab")``;
it looks the domain up and defines and starts it when missing, so a successful run really leaves web1
running. The shadow scan checks exactly that, and finds nothing to report for this DAG.

Needs the ``libvirt_lab`` connection (type ``libvirt``), e.g. the test driver with ``lab_node.xml``::

    AIRFLOW_CONN_LIBVIRT_LAB='{"conn_type": "libvirt",
        "extra": {"uri": "test:///path/to/dags/examples/lab_node.xml", "host_name": "lab"}}'
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task

from qubinode_recovery_provider.assets import libvirt_domain

WEB1_XML = """<domain type='test'><name>web1</name><memory unit='MiB'>2048</memory>
<os><type>hvm</type></os></domain>"""

with DAG(
    dag_id="example_kcli_deploy_web",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["qubinode", "example", "kcli"],
    doc_md=__doc__,
):
    preflight = BashOperator(
        task_id="preflight",
        bash_command="echo 'kcli list host: lab'; test -n \"$HOSTNAME\"",
    )

    @task(outlets=[libvirt_domain("web1", host="lab")])
    def create_vm() -> str:
        """Ensure web1 exists and runs (idempotent, like ``kcli create vm`` on an existing VM)."""
        import libvirt

        from qubinode_recovery_provider.hooks.libvirt import LibvirtHook

        conn = LibvirtHook(libvirt_conn_id="libvirt_lab").get_conn()
        try:
            try:
                domain = conn.lookupByName("web1")
            except libvirt.libvirtError:
                domain = conn.defineXML(WEB1_XML)
            if not domain.isActive():
                domain.create()
            return f"web1 is {'running' if domain.isActive() else 'stopped'}"
        finally:
            conn.close()

    configure_vm = BashOperator(
        task_id="configure_vm",
        bash_command="echo 'ansible-playbook -i web1, site.yml (simulated)'",
    )

    preflight >> create_vm() >> configure_vm
