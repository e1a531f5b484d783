"""Pull an image over a flaky network: the retried-with-the-right-delay example.

``pull_image`` fails the first time with the error podman prints when the registry connection is reset
mid-request. The ``DiagnosisRetryPolicy`` reads the error in the task log, recognises a transient
network failure and retries after the delay that cause calls for (60 s for a reset connection, doubled
for each earlier try), instead of the DAG's fixed ``retry_delay`` -- and the second try succeeds. Its
decision is in the task instance's ``retry_reason`` and in the XCom ``qubinode_retry_decision``.

To add this to your DAG: ``retry_policy=DiagnosisRetryPolicy()`` and
``on_failure_callback=RecoveryNotifier()`` in ``default_args`` (or on a task), keep ``retries`` as the
upper bound.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from datetime import datetime, timedelta

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG

from qubinode_recovery_provider.notifications import RecoveryNotifier
from qubinode_recovery_provider.policies import DiagnosisRetryPolicy

IMAGE = "quay.io/qubinode/base:latest"
STATE_DIR = os.environ.get("QUBINODE_EXAMPLES_STATE_DIR", tempfile.gettempdir())
RESET_ERROR = (
    f"Error: initializing source docker://{IMAGE}: pinging container registry quay.io: "
    'Get "https://quay.io/v2/": read tcp 10.0.2.15:46000->23.1.48.33:443: read: connection reset by peer'
)

# A stand-in for `podman pull` whose first attempt per run has its connection reset.
PULL = f"""
marker="{STATE_DIR}/flaky-network-{{{{ run_id | replace(':', '_') | replace('+', '_') }}}}"
if [ ! -e "$marker" ]; then
    touch "$marker"
    echo 'Trying to pull {IMAGE}...'
    echo {shlex.quote(RESET_ERROR)} >&2
    exit 125
fi
echo 'Trying to pull {IMAGE}...'
echo 'Writing manifest to image destination'
"""

with DAG(
    dag_id="example_flaky_network",
    schedule=None,
    start_date=datetime(2025, 1, 1),
    catchup=False,
    tags=["qubinode", "example", "podman", "recovery"],
    doc_md=__doc__,
    default_args={
        "owner": "infra",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
        "retry_policy": DiagnosisRetryPolicy(),
        "on_failure_callback": RecoveryNotifier(),
    },
):
    pull_image = BashOperator(task_id="pull_image", bash_command=PULL)
    run_container = BashOperator(
        task_id="run_container", bash_command=f"echo 'podman run --rm {IMAGE} /bin/true (simulated)'"
    )

    pull_image >> run_container
