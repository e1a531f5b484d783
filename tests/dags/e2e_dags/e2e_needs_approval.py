"""End-to-end test DAG: a network failure the first time (marker file), then success; recovered only
after a person approves (the test starts the recovery run itself, with automatic recovery off)."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.notifications import RecoveryNotifier

STATE_DIR = os.environ.get("QUBINODE_EXAMPLES_STATE_DIR", tempfile.gettempdir())

with DAG(
    dag_id="e2e_needs_approval",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 0, "on_failure_callback": RecoveryNotifier(trigger_recovery=False)},
):
    prepare = BashOperator(task_id="prepare", bash_command="echo prepared")
    sync = BashOperator(
        task_id="sync_mirror",
        bash_command=(
            f'marker="{STATE_DIR}/approval-{{{{ run_id | replace(":", "_") | replace("+", "_") }}}}"; '
            'if [ ! -e "$marker" ]; then touch "$marker"; '
            "echo 'curl: (7) Failed to connect to mirror.example.com port 443: Connection refused' >&2; "
            "exit 7; fi; echo synced"
        ),
    )
    publish = BashOperator(task_id="publish", bash_command="echo published")
    prepare >> sync >> publish
