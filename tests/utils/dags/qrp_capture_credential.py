"""A shell step whose exception says only "exit code 255"; only its own output names the cause.

``retries=3`` with :class:`DiagnosisRetryPolicy` and :class:`RecoveryNotifier`: the policy must find
``Permission denied (publickey)`` in the task's in-memory log tail and fail the task after one try, in
every execution mode. When ``QRP_CAPTURE_DUMP_DIR`` is set, a second failure callback writes what this
process captured for the attempt (redacted) and the processes above it to ``<dir>/try_<n>.json``, so a
test can see the capture working in the process that ran the task, and which executor started it.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path
from typing import Any

import psutil
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.notifications import RecoveryNotifier
from qubinode_recovery_provider.policies import DiagnosisRetryPolicy
from qubinode_recovery_provider.utils import task_log_capture

#: A secret the command prints: it must never come out of the capture.
CANARY = "hvs.CANARYcapture0123456789abcdefXYZ"


def _ancestors() -> list[dict[str, Any]]:
    """Pid and command line of each process above this one, nearest first."""
    found = []
    for process in psutil.Process().parents():
        try:
            found.append({"pid": process.pid, "cmdline": process.cmdline()})
        except psutil.Error:
            found.append({"pid": process.pid, "cmdline": []})
    return found


def dump_capture(context: Any) -> None:
    """Write the redacted in-memory tail of the failed attempt where the test can read it."""
    target = os.environ.get("QRP_CAPTURE_DUMP_DIR")
    if not target:
        return
    ti = context["ti"]
    lines = task_log_capture.read_tail(ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number, 500)
    record = {
        "pid": os.getpid(),
        # the supervisor that forked this process, and what started it (a LocalExecutor worker, a
        # Celery worker's pool process): which executor ran the task
        "ancestors": _ancestors(),
        "installed": task_log_capture.installed(),
        "lines": lines,
    }
    Path(target).mkdir(parents=True, exist_ok=True)
    (Path(target) / f"try_{ti.try_number}.json").write_text(json.dumps(record))


with DAG(
    "qrp_capture_credential",
    schedule=None,
    start_date=datetime.datetime(2024, 1, 1),
    catchup=False,
    default_args={"retries": 3, "retry_delay": datetime.timedelta(seconds=1)},
):
    BashOperator(
        task_id="ssh_to_hypervisor",
        bash_command=(
            'echo "connecting to root@10.0.0.5 with token $QRP_TOKEN"; '
            'echo "root@10.0.0.5: Permission denied (publickey)." >&2; exit 255'
        ),
        env={"QRP_TOKEN": CANARY},
        retry_policy=DiagnosisRetryPolicy(),
        on_failure_callback=[RecoveryNotifier(trigger_recovery=False), dump_capture],
        on_retry_callback=RecoveryNotifier(trigger_recovery=False),
    )
