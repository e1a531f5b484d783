"""The shadow core, the CLI scan and the REST API client run in a process that never imports Airflow."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shadow_site import LAB_XML, REAL_EVENTS, REPO
from support import processes

PROGRAM = """
import json, sys
from qubinode_recovery_provider.cli import main
code = main(["scan", "--json", "--runs-file", sys.argv[1], "--lineage-file", sys.argv[2],
             "--libvirt-uri", "lab=test://" + sys.argv[3]])
# the REST API client and its core users: the runs source and the retry-from-failure action
from qubinode_recovery_provider.airflow_api import AirflowAPIClient, APISettings
from qubinode_recovery_provider.recovery.retry_from_failure import AirflowRetryFromFailure
from qubinode_recovery_provider.shadow import AirflowRunsSource
with AirflowAPIClient(APISettings.from_url("http://u:p@127.0.0.1:9")) as client:
    AirflowRunsSource(client)
    AirflowRetryFromFailure(lambda: client)
loaded = sorted(m for m in sys.modules if m == "airflow" or m.startswith("airflow."))
print(json.dumps({"code": code, "airflow": loaded}), file=sys.stderr)
"""


def test_the_cli_scan_never_imports_airflow(tmp_path: Path) -> None:
    runs = tmp_path / "runs.json"
    runs.write_text(json.dumps({"dag_runs": [], "task_instances": []}))
    proc = processes.run(
        [sys.executable, "-c", PROGRAM, str(runs), str(REAL_EVENTS), str(LAB_XML)], cwd=REPO, timeout=120
    )
    result = json.loads(proc.stderr.strip().splitlines()[-1])
    assert result == {"code": 0, "airflow": []}
