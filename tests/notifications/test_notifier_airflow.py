"""RecoveryNotifier in real Airflow: ``airflow dags test`` of the DAGs in ``tests/notifications/dags``.

- faults: API server down, ledger locked and libvirt (``systemctl``) hanging at once: the tasks end as
  they would without the notifier, each callback returns within its budget, and the incident is spooled
  and lands in the ledger once it is free;
- the recovery run is started through a real API server with an Airflow connection (task callback set
  in ``default_args``, and a DAG-level callback), or through the Task SDK without any connection;
- the DAG processor's way of running a failure callback (a task killed from outside: no exception).
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from pathlib import Path

import pytest
from notify_helpers import executable
from support import processes
from support.airflow_harness import AirflowHome, api_home, new_home
from support.processes import free_port

from qubinode_recovery_provider.notifications.pending_runs import PENDING, SENT, TriggerOutbox
from qubinode_recovery_provider.store import Ledger

pytestmark = pytest.mark.integration

DAGS = Path(__file__).parent / "dags"
SUMMARY = re.compile(r"qubinode RecoveryNotifier: (stage=.*)$", re.MULTILINE)
GENEROUS = 15.0


def summaries(output: str) -> list[dict[str, str]]:
    """The key=value pairs of every notifier summary line in a ``dags test`` output."""
    found = []
    for match in SUMMARY.finditer(output):
        pairs = dict(re.findall(r"(\w+)=('[^']*'|\"[^\"]*\"|\S+)", match.group(1)))
        found.append({k: v.strip("'\"") for k, v in pairs.items()})
    return found


def state_env(tmp_path: Path) -> dict[str, str]:
    return {
        "AIRFLOW__QUBINODE_RECOVERY__STATE_DIR": str(tmp_path / "state"),
        "AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
    }


def recovery_runs(home: AirflowHome, fingerprint: str) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    rows = home.query("select run_id, run_type, conf from dag_run where dag_id='qubinode_failure_recovery'")
    runs = [(run_id, run_type, _conf(conf)) for run_id, run_type, conf in rows]
    return [r for r in runs if r[2].get("fingerprint") == fingerprint]


def _conf(value: object) -> dict:  # type: ignore[type-arg]
    if isinstance(value, bytes | str):
        return json.loads(value) if value else {}
    return {}


def test_faults_do_not_change_the_task_outcome_nor_lose_the_incident(tmp_path: Path) -> None:
    home = new_home(tmp_path / "airflow", dag_dirs=(DAGS,))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "state" / "spool")
    ledger.migrate()
    fake_bin = tmp_path / "bin"
    executable(fake_bin, "systemctl", "sleep 60\n")  # libvirtd's unit never answers
    closed = {"conn_type": "http", "host": "127.0.0.1", "port": free_port(), "login": "u", "password": "p"}
    env = {
        **state_env(tmp_path),
        "PATH": f"{fake_bin}:{home.env['PATH']}",
        "AIRFLOW__QUBINODE_RECOVERY__SYSTEMD_UNITS": "libvirtd.service",
        "AIRFLOW__QUBINODE_RECOVERY__PROBE_TIMEOUT_SECONDS": "30",
        "AIRFLOW_CONN_AIRFLOW_API": json.dumps(closed),
    }
    holder = sqlite3.connect(tmp_path / "ledger.db", timeout=1, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the ledger stays locked for the whole run
    try:
        result = home.dags_test("qrp_notify_faults", extra_env=env)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    out = result.stdout
    found = summaries(out)
    assert len(found) == 2, out[-5000:]  # on_retry_callback, then on_failure_callback
    for summary in found:
        assert float(summary["elapsed"].rstrip("s")) < GENEROUS
        assert summary["recorded"] == "spooled"
        assert summary["root_cause"] == "service_dependency"
    assert found[0]["pending"] == "True"

    states = dict(home.query("select task_id, state from task_instance where dag_id='qrp_notify_faults'"))
    assert states == {"define_vm": "failed", "healthy": "success"}
    assert home.query("select try_number from task_instance where task_id='define_vm'") == [(2,)]
    assert home.query("select state from dag_run where dag_id='qrp_notify_faults'") == [("failed",)]

    (request,) = TriggerOutbox(tmp_path / "state" / "recovery_triggers").records()
    assert request.status == PENDING
    assert request.conf["failed_task_id"] == "define_vm"
    ledger.flush_spool()
    incident = ledger.get_incident(found[0]["fingerprint"])
    assert incident is not None
    assert incident.occurrences == 2
    assert incident.root_cause.value == "service_dependency"


def test_a_task_callback_starts_the_recovery_run_through_the_api(tmp_path: Path) -> None:
    home, server = api_home()
    result = home.dags_test("qrp_notify_api", extra_env={**state_env(tmp_path), **server.connection_env()})
    (summary,) = summaries(result.stdout)
    assert summary["triggered"] == "True", result.stdout[-5000:]
    assert summary["root_cause"] == "credential"
    ((run_id, run_type, conf),) = recovery_runs(home, summary["fingerprint"])
    assert run_id == summary["recovery_run"]
    assert run_type == "manual"  # started through the REST API
    assert (conf["failed_dag_id"], conf["failed_task_id"]) == ("qrp_notify_api", "read_vault_secret")
    assert "permission denied" in conf["failure_message"]
    assert "hvs." not in json.dumps(conf)
    (note,) = home.query(
        "select content from dag_run_note join dag_run on dag_run.id = dag_run_note.dag_run_id "
        "where dag_run.run_id = ?",
        run_id,
    )
    assert summary["fingerprint"] in note[0]
    (request,) = TriggerOutbox(tmp_path / "state" / "recovery_triggers").records()
    assert (request.status, request.via) == (SENT, "api")
    incident = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool").get_incident(
        summary["fingerprint"]
    )
    assert incident is not None
    assert incident.dag_ids == ["qrp_notify_api"]


def test_a_dag_level_callback_reads_the_last_tasks_log(tmp_path: Path) -> None:
    home, server = api_home()
    env = {**state_env(tmp_path), **server.connection_env()}
    result = home.dags_test("qrp_notify_dag_level", use_executor=True, extra_env=env)
    (summary,) = summaries(result.stdout)
    assert summary["triggered"] == "True", result.stdout[-5000:]
    assert summary["root_cause"] == "storage"  # from create_disk's attempt log: no exception at DAG level
    ((_, _, conf),) = recovery_runs(home, summary["fingerprint"])
    assert conf["failed_dag_id"] == "qrp_notify_dag_level"
    assert conf["failed_task_id"] == "create_disk"
    assert "task_failure" in conf["failure_message"]
    assert "No space left on device" in conf["failure_message"]


def test_without_a_connection_the_task_sdk_starts_one_run_per_incident(tmp_path: Path) -> None:
    home, _ = api_home()
    result = home.dags_test("qrp_notify_task_sdk", use_executor=True, extra_env=state_env(tmp_path))
    first, second = summaries(result.stdout)
    assert first["triggered"] == "True", result.stdout[-5000:]
    assert first["trigger_reason"] == "new incident"
    assert second["triggered"] == "False"
    assert second["occurrences"] == "2"
    ((run_id, run_type, conf),) = recovery_runs(home, first["fingerprint"])
    assert run_id == first["recovery_run"]
    assert run_type == "operator_triggered"  # asked by the task's supervisor with the task's own token
    assert (conf["failed_task_id"], conf["failed_state"], conf["root_cause"]) == (
        "ansible_play",
        "up_for_retry",
        "network",
    )
    (request,) = TriggerOutbox(tmp_path / "state" / "recovery_triggers").records()
    assert request.via == "task_sdk"


PROCESSOR_SCRIPT = """
import sys, uuid
import structlog
from airflow.api_fastapi.execution_api.datamodels.taskinstance import TaskInstance
from airflow.callbacks.callback_requests import TaskCallbackRequest
from airflow.dag_processing.dagbag import DagBag
from airflow.dag_processing.processor import _execute_task_callbacks
from airflow.utils.state import TaskInstanceState

dagbag = DagBag(dag_folder=sys.argv[1])
ti = TaskInstance(id=uuid.uuid4(), task_id="read_vault_secret", dag_id="qrp_notify_api",
                  run_id="scheduled__2026-01-01T00:00:00+00:00", try_number=3, dag_version_id=uuid.uuid4())
request = TaskCallbackRequest(filepath="qrp_notify_api.py", bundle_name="dags-folder", bundle_version=None,
                              ti=ti, msg="Task was killed externally",
                              task_callback_type=TaskInstanceState.FAILED)
_execute_task_callbacks(dagbag, request, structlog.get_logger())
"""


def test_a_callback_run_by_the_dag_processor_without_an_exception(tmp_path: Path) -> None:
    home, server = api_home()
    env = {**home.env, **state_env(tmp_path), **server.connection_env()}
    result = processes.run(
        [sys.executable, "-c", PROCESSOR_SCRIPT, str(home.dags)], env=env, timeout=120, stderr_to_stdout=True
    )
    (summary,) = summaries(result.stdout)
    assert summary["triggered"] == "True", result.stdout[-5000:]
    ((_, _, conf),) = recovery_runs(home, summary["fingerprint"])
    assert conf["failed_run_id"] == "scheduled__2026-01-01T00:00:00+00:00"
    assert conf["failed_try_number"] == 3
    assert "killed from outside" in conf["failure_message"]
