"""Helpers of the shadow-scan tests (Airflow homes, DAG runs, an api-server).

``airflow_home_template`` migrates one Airflow metadata database per session; every Airflow-level test
gets its own ``AIRFLOW_HOME`` with a copy of it. ``dag_runs`` runs the example DAGs of
``dags/examples`` for real (``airflow dags test`` with the OpenLineage file transport) against the
libvirt test driver's ``lab_node.xml``, then serves their runs with a real ``airflow api-server`` on
127.0.0.1. The DAG runs:

- ``example_kcli_deploy_web``: creates web1 for real (present, running) -- must not be flagged;
- ``example_kcli_deploy_db``: its ``kcli create vm db1 || echo`` silently does nothing -- vm_not_created;
- ``example_kcli_start_cache``: names lab/cache1 by the ``qubinode_vm`` param; cache1 is shut off;
- ``example_kcli_snapshot_lab``: green run with a failed task -- state_mismatch;
- ``example_kcli_existing_lab``: declares nothing; kcli/virt-install/virsh command lines -- inferred
  vm_not_created (idm; and logs1 on lab_node.xml) or, against ``data/existing_lab_node.xml``,
  vm_not_running (logs1); nothing for web1 or the deleted oldvm;
- ``example_kcli_deploy_web`` again with OpenLineage disabled -- lineage_missing.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from support import processes
from support.processes import free_port

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
VENV_BIN = Path(sys.executable).parent
AIRFLOW = str(VENV_BIN / "airflow")
LAB_XML = REPO / "dags" / "examples" / "lab_node.xml"
REAL_EVENTS = REPO / "examples" / "shadow" / "lineage.jsonl"
EXISTING_LAB_XML = DATA / "existing_lab_node.xml"
OL_NAMESPACE = "qubinode-test"
EXAMPLE_DAGS = [
    "example_kcli_deploy_web",
    "example_kcli_deploy_db",
    "example_kcli_start_cache",
    "example_kcli_snapshot_lab",
    "example_kcli_existing_lab",
]


def lab_conn(xml: Path) -> str:
    return json.dumps({"conn_type": "libvirt", "extra": {"uri": f"test://{xml}", "host_name": "lab"}})


def airflow_env(home: Path, dags: Path, **extra: str) -> dict[str, str]:
    """The environment of an ``airflow`` subprocess with its own home."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_HOME"))
    }
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__OPENLINEAGE__NAMESPACE=OL_NAMESPACE,
        AIRFLOW__QUBINODE_RECOVERY__STATE_DIR=str(home / "qubinode_recovery"),
    )
    env.update(extra)
    return env


def run_airflow(env: dict[str, str], *args: str, timeout: float = 180) -> processes.Completed:
    proc = processes.run([AIRFLOW, *args], env=env, timeout=timeout)
    assert proc.returncode == 0, (
        f"airflow {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    )
    return proc


def clone_home(template: Path, home: Path) -> Path:
    """A fresh AIRFLOW_HOME holding a copy of the migrated metadata database."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy2(template / "airflow.db", home / "airflow.db")
    return home


@dataclass
class DagRuns:
    """The example DAG runs, their lineage and a real api-server serving them."""

    home: Path
    dags: Path
    lab_xml: Path
    events: Path
    api_url: str
    password: str
    env: dict[str, str]
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def api_url_with_credentials(self) -> str:
        return self.api_url.replace("http://", f"http://admin:{self.password}@")

    def run_of(self, dag_id: str, lineage: bool = True) -> dict[str, Any]:
        """The first run of ``dag_id`` (the second one of example_kcli_deploy_web has no lineage)."""
        runs = sorted((r for r in self.runs if r["dag_id"] == dag_id), key=lambda r: r["end_date"])
        return runs[0] if lineage else runs[-1]

    def token(self) -> str:
        response = httpx.post(
            f"{self.api_url}/auth/token", json={"username": "admin", "password": self.password}, timeout=30
        )
        response.raise_for_status()
        return str(response.json()["access_token"])


def start_api_server(env: dict[str, str], home: Path) -> tuple[processes.Service, str]:
    """Start ``airflow api-server`` on a free port and wait (at most 90 s) until it answers; stop it
    with :func:`stop_process`."""
    port = free_port()
    proc = processes.Service.start(
        [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        name="shadow api-server",
        log_path=home / "api-server.log",
        env=env,
        shared=True,  # owned by the session fixture ``dag_runs``; the session's end stops it too
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop_process(proc)
            raise RuntimeError(f"api-server exited: {proc.log_tail(60)[-3000:]}")
        try:
            if httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_process(proc)
    raise RuntimeError("api-server did not answer within 90 s")


def stop_process(proc: processes.Service) -> None:
    """Stop the api-server and its whole tree (SIGTERM, SIGKILL after 20 s)."""
    proc.stop(grace=20)
