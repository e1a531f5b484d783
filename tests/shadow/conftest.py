"""Fixtures of the shadow-scan tests (see shadow_site for what the DAG runs are)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from shadow_site import (
    EXAMPLE_DAGS,
    REAL_EVENTS,
    REPO,
    DagRuns,
    airflow_env,
    clone_home,
    lab_conn,
    run_airflow,
    start_api_server,
    stop_process,
)


@pytest.fixture(scope="session")
def airflow_home_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ``airflow db migrate`` per session."""
    home = tmp_path_factory.mktemp("airflow_template")
    env = airflow_env(home, home / "dags")
    run_airflow(env, "db", "migrate")
    return home


@pytest.fixture(scope="session")
def dag_runs(airflow_home_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagRuns]:
    base = tmp_path_factory.mktemp("dag_runs")
    home = clone_home(airflow_home_template, base / "home")
    dags = base / "dags"
    shutil.copytree(REPO / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    lab_xml = dags / "examples" / "lab_node.xml"
    events = base / "openlineage" / "events.jsonl"
    events.parent.mkdir()
    transport = json.dumps({"type": "file", "log_file_path": str(events), "append": True})
    env = airflow_env(
        home,
        dags,
        AIRFLOW__OPENLINEAGE__TRANSPORT=transport,
        AIRFLOW_CONN_LIBVIRT_LAB=lab_conn(lab_xml),
    )
    for dag_id in EXAMPLE_DAGS:
        run_airflow(env, "dags", "test", dag_id)
    run_airflow({**env, "AIRFLOW__OPENLINEAGE__DISABLED": "true"}, "dags", "test", EXAMPLE_DAGS[0])
    proc, url = start_api_server(env, home)
    try:
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]
        runs = DagRuns(home, dags, lab_xml, events, url, password, env)
        response = httpx.get(
            f"{url}/api/v2/dags/~/dagRuns",
            params={"limit": 100},
            headers={"Authorization": f"Bearer {runs.token()}"},
            timeout=30,
        )
        response.raise_for_status()
        runs.runs = response.json()["dag_runs"]
        yield runs
    finally:
        stop_process(proc)


@pytest.fixture
def real_events() -> list[dict[str, Any]]:
    """OpenLineage events written by ``airflow dags test`` of the example DAGs (file transport)."""
    return [json.loads(line) for line in REAL_EVENTS.read_text().splitlines() if line.strip()]
