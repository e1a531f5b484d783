"""Tests at ``airflow dags test`` level: scenarios run with ``dag.test()`` against a real, migrated SQLite
metadata DB in a fresh Airflow home, in one driver process per batch (Airflow is imported once).

    runs = run_dag_tests(tmp_path_factory, SCENARIOS, dag_files)
    assert runs["my_scenario"]["state"] == "success"
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DRIVER = ROOT / "tests" / "dags" / "dag_test_driver.py"


class DagTestRuns:
    """The results of a batch of ``dag.test()`` runs in one Airflow home."""

    def __init__(self, home: Path, results: dict[str, Any], output: str) -> None:
        self.home = home
        self.results = results
        self.output = output

    def __getitem__(self, name: str) -> dict[str, Any]:
        result = self.results.get(name)
        assert result is not None, f"scenario {name} did not run:\n{self.output[-6000:]}"
        assert "error" not in result, result["error"]
        return result

    def ledger(self) -> Any:
        from qubinode_recovery_provider.store import Ledger

        return Ledger(f"sqlite:///{self.home / 'qubinode_recovery' / 'ledger.db'}", self.home / "spool-test")

    def section(self, name: str) -> str:
        """The driver's output for one scenario (task logs included)."""
        start = self.output.find(f"=== scenario {name} ===")
        end = self.output.find(f"=== end {name}:", start)
        return self.output[start:end] if start >= 0 else ""


def airflow_test_env(home: Path, dags_folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__QUBINODE_RECOVERY__RECOVERY_CONN_ID": "airflow_api",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(ROOT),
        }
    )
    return env


def run_dag_tests(
    tmp_path_factory: pytest.TempPathFactory,
    scenarios: list[dict[str, Any]],
    dag_files: list[Path],
    timeout: float = 600,
) -> DagTestRuns:
    """Run ``scenarios`` (see ``tests/dags/dag_test_driver.py``) on a copy of ``dag_files``."""
    base = tmp_path_factory.mktemp("dagtest")
    home, dags = base / "home", base / "dags"
    dags.mkdir()
    for path in dag_files:
        shutil.copy2(path, dags / path.name)
    env = airflow_test_env(home, dags)
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    spec, results = base / "scenarios.json", base / "results.json"
    spec.write_text(json.dumps(scenarios))
    done = subprocess.run(
        [sys.executable, str(DRIVER), str(spec), str(results)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    return DagTestRuns(home, json.loads(results.read_text()) if results.exists() else {}, output)
