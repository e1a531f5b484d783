"""What the task-log-capture tests share: the DAG they run, the provider's settings, and the checks of a
credential failure that the retry policy failed after one try because it saw the command's output."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

DAGS = Path(__file__).parent / "dags"
DAG_ID, TASK_ID = "qrp_capture_credential", "ssh_to_hypervisor"
CANARY = "hvs.CANARYcapture0123456789abcdefXYZ"  # printed by the DAG's command
EVIDENCE = "root@10.0.0.5: Permission denied (publickey)."
SUMMARY = re.compile(r"qubinode RecoveryNotifier: stage=\S+ root_cause=(\w+)")


def provider_env(tmp_path: Path) -> dict[str, str]:
    return {
        "AIRFLOW__QUBINODE_RECOVERY__STATE_DIR": str(tmp_path / "state"),
        "AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "AIRFLOW__QUBINODE_RECOVERY__SYSTEMD_UNITS": "",
        # what is tested is the evidence, not the first decision's time budget on a loaded 2-CPU box
        "AIRFLOW__QUBINODE_RECOVERY__POLICY_BUDGET_SECONDS": "60",
        "QRP_CAPTURE_DUMP_DIR": str(tmp_path / "dump"),
    }


def copy_dags(tmp_path: Path) -> Path:
    dags = tmp_path / "dags"
    dags.mkdir()
    for path in DAGS.glob("*.py"):
        shutil.copy2(path, dags / path.name)
    return dags


def read_dump(tmp_path: Path) -> dict[str, dict[str, Any]]:
    """What the DAG's dump callback wrote, by file name (one per failed try)."""
    return {p.name: json.loads(p.read_text()) for p in sorted((tmp_path / "dump").glob("try_*.json"))}


def assert_failed_once_on_credential(
    home: Path, state: str, task_states: dict[str, Any], xcom: dict[str, Any] | None
) -> None:
    """The run failed after one try (retries=3), the one attempt log holds one policy decision, FAIL
    on ``credential`` with the evidence, the user's line once, the notifier's outcome line; the XCom
    decision says the same without the planted secret."""
    assert state == "failed"
    assert task_states == {TASK_ID: ("failed", 1)}  # retries=3, tried once
    attempts = sorted((home / "logs" / f"dag_id={DAG_ID}").rglob("attempt=*.log"))
    assert [p.name for p in attempts] == ["attempt=1.log"]
    records = [json.loads(line) for line in attempts[0].read_text().splitlines() if line.startswith("{")]
    decisions = [r for r in records if r.get("event") == "Retry policy decision"]
    assert [d["action"] for d in decisions] == ["fail"]
    reason = decisions[0]["reason"]
    assert reason.startswith("qubinode: credential (")
    assert EVIDENCE in reason
    assert re.search(r"\[from the (task log in memory|attempt log) \(", reason), reason
    assert len([r for r in records if r.get("event") == EVIDENCE]) == 1  # the user's log: once, as before
    summaries = [SUMMARY.search(str(r.get("event"))) for r in records]
    assert [m.group(1) for m in summaries if m] == ["credential"]
    assert xcom is not None
    assert (xcom["action"], xcom["root_cause"]) == ("fail", "credential")
    assert CANARY not in json.dumps(xcom)
