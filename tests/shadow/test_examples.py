"""The shadow-scan sample inputs of ``examples/shadow/`` (the end of ``make demo``): the runs file, the
OpenLineage events of real ``airflow dags test`` runs and the test driver's lab host give exactly the
findings the demo promises, through the CLI the demo runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from shadow_site import REPO
from support import processes

EXAMPLES = REPO / "examples" / "shadow"
sys.path.insert(0, str(REPO / "scripts"))

from demo import shadow_scan_argv  # noqa: E402


def test_the_samples_are_one_runs_file_one_lineage_file_and_one_host() -> None:
    assert sorted(p.name for p in EXAMPLES.iterdir()) == ["lab_node.xml", "lineage.jsonl", "runs.json"]
    runs = json.loads((EXAMPLES / "runs.json").read_text())
    assert {r["state"] for r in runs["dag_runs"]} == {"success"}
    assert "<name>db1</name>" not in (EXAMPLES / "lab_node.xml").read_text()


def test_the_demos_scan_finds_the_promised_shadow_errors(tmp_path: Path) -> None:
    env = {"AIRFLOW_HOME": str(tmp_path), "AIRFLOW__QUBINODE_RECOVERY__STATE_DIR": str(tmp_path / "state")}
    cli = str(Path(sys.executable).with_name("qubinode-recovery"))
    done = processes.run([cli, *shadow_scan_argv(), "--json"], env=env, timeout=120)
    assert done.returncode == 1, done.stderr  # findings reported
    findings = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted((f["type"], f["dag_id"], f["resource"]) for f in findings) == [
        ("state_mismatch", "example_kcli_snapshot_lab", None),
        ("vm_not_created", "example_kcli_deploy_db", "libvirt://lab/db1"),
        ("vm_not_running", "example_kcli_start_cache", "libvirt://lab/cache1"),
    ]
    created = next(f for f in findings if f["type"] == "vm_not_created")
    assert created["task_id"] == "create_vm"
    assert any("'db1' is not among them" in line for line in created["evidence"])
