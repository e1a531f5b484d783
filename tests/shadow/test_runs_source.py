"""Finished runs from Airflow's REST API v2 (the real httpx client against a local stand-in that pages
like the api-server) and from files of the same JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from shadow_fakes import AirflowApiServer, serve
from shadow_site import free_port

from qubinode_recovery_provider.shadow import AirflowRunsSource, RunsFileSource, RunsSourceError


def dag_run(dag_id: str, run_id: str, end: str, state: str = "success", conf: dict | None = None) -> dict:
    return {
        "dag_run_id": run_id,
        "dag_id": dag_id,
        "logical_date": end,
        "start_date": end,
        "end_date": end,
        "run_after": end,
        "run_type": "scheduled",
        "state": state,
        "conf": conf or {},
        "dag_versions": [],
        "dag_display_name": dag_id,
    }


def task(dag_id: str, run_id: str, task_id: str, state: str = "success", map_index: int = -1) -> dict:
    return {
        "id": f"{dag_id}-{run_id}-{task_id}-{map_index}",
        "task_id": task_id,
        "dag_id": dag_id,
        "dag_run_id": run_id,
        "map_index": map_index,
        "state": state,
        "try_number": 1,
        "max_tries": 0,
        "operator": "BashOperator",
        "pool": "default_pool",
        "end_date": "2026-01-01T00:00:00Z",
    }


@pytest.fixture
def api() -> AirflowApiServer:
    runs, tis = [], []
    for n in range(7):
        for dag_id in ("build_vm", "backup"):
            run_id = f"scheduled__2026-01-01T0{n}:00:00+00:00"  # the same run ids in both DAGs
            runs.append(dag_run(dag_id, run_id, f"2026-01-01T0{n}:05:00Z"))
            tis += [task(dag_id, run_id, "create"), task(dag_id, run_id, "check")]
    runs.append(dag_run("build_vm", "manual__x", "2026-01-01T03:30:00Z", state="failed"))
    params = {"build_vm": {"qubinode_vm": {"value": "lab/web1", "schema": {"type": "string"}}}}
    return AirflowApiServer(runs, tis, dag_params=params, page_limit=3)


def test_cursor_pages_and_batched_task_instances(api: AirflowApiServer) -> None:
    with serve(api.handle) as served:
        source = AirflowRunsSource(
            served.url, username="admin", password="secret", page_size=3, runs_per_batch=4
        )
        runs = source.fetch(
            datetime(2026, 1, 1, 2, tzinfo=UTC),
            datetime(2026, 1, 1, 6, tzinfo=UTC),
        )
    assert sorted((r.dag_id, r.run_id[11:24]) for r in runs) == [
        (dag, f"2026-01-01T0{n}") for dag in ("backup", "build_vm") for n in (2, 3, 4, 5)
    ]
    assert all(sorted(t.task_id for t in r.tasks or ()) == ["check", "create"] for r in runs)
    assert next(r for r in runs if r.dag_id == "build_vm").dag_params == {
        "qubinode_vm": {"value": "lab/web1", "schema": {"type": "string"}}
    }
    run_pages = [p for m, p in served.requests if p == "/api/v2/dags/~/dagRuns"]
    batches = [p for m, p in served.requests if p.endswith("/taskInstances/list")]
    assert len(run_pages) == 3  # 8 runs, 3 a page
    assert 2 <= len(batches) < len(runs)  # batched, never one request per run
    assert served.requests[0] == ("POST", "/auth/token")


def test_a_server_without_cursors_is_paged_by_offset(api: AirflowApiServer) -> None:
    api.cursor = False
    with serve(api.handle) as served:
        runs = AirflowRunsSource(served.url, token="static-token", page_size=3).fetch()
    assert len(runs) == 14


def test_bad_credentials_stop_the_scan_with_a_clear_error(api: AirflowApiServer) -> None:
    with serve(api.handle) as served, pytest.raises(RunsSourceError, match="HTTP 401"):
        AirflowRunsSource(served.url, username="admin", password="wrong").fetch()


def test_an_unreachable_api_is_a_clear_error() -> None:
    with pytest.raises(RunsSourceError, match="unusable"):
        AirflowRunsSource(f"http://127.0.0.1:{free_port()}", token="t", timeout=2).fetch()


def test_from_an_airflow_connection() -> None:
    class Conn:
        host, port, schema, login, password = "airflow.example", 8443, "https", "admin", "pw"
        extra_dejson: dict[str, Any] = {"verify": False}

    source = AirflowRunsSource.from_connection(Conn())
    assert (source.base_url, source.username, source.password, source.verify) == (
        "https://airflow.example:8443",
        "admin",
        "pw",
        False,
    )
    Conn.extra_dejson = {"base_url": "http://api:8080/", "token": "jwt"}
    source = AirflowRunsSource.from_connection(Conn())
    assert (source.base_url, source.token) == ("http://api:8080", "jwt")


# --- files ---------------------------------------------------------------------------------------


def _pages(api: AirflowApiServer) -> list[dict[str, Any]]:
    return [
        {"dag_runs": api.dag_runs[:5], "total_entries": len(api.dag_runs)},
        {"dag_runs": api.dag_runs[5:]},
        {"task_instances": api.task_instances},
        {"dags": [{"dag_id": "build_vm", "params": {"qubinode_vm": {"value": "lab/web1"}}}]},
    ]


@pytest.mark.parametrize("layout", ["object", "list", "pages", "objects"])
def test_runs_files_in_every_layout(api: AirflowApiServer, tmp_path: Path, layout: str) -> None:
    pages = _pages(api)
    path = tmp_path / "runs.json"
    if layout == "object":
        merged = {"dag_runs": api.dag_runs, "task_instances": api.task_instances, "dags": pages[3]["dags"]}
        path.write_text(json.dumps(merged))
    elif layout == "list":
        path.write_text(json.dumps(pages))
    elif layout == "pages":
        path.write_text("\n".join(json.dumps(p) for p in pages))
    else:
        items = [*api.dag_runs, *api.task_instances, pages[3]]
        path.write_text("\n".join(json.dumps(i) for i in items) + "\nnot json\n")
    source = RunsFileSource(path)
    runs = source.fetch()
    assert len(runs) == 14  # the failed run is not a shadow-error candidate
    assert all(len(r.tasks or ()) == 2 for r in runs)
    assert {r.dag_params is not None for r in runs if r.dag_id == "build_vm"} == {True}
    if layout == "objects":
        assert source.report.skipped == 1
        assert ":" in source.report.warnings[0]


def test_a_runs_file_window_filters_by_end_date(api: AirflowApiServer, tmp_path: Path) -> None:
    path = tmp_path / "runs.json"
    path.write_text(json.dumps(_pages(api)))
    runs = RunsFileSource(path).fetch(datetime(2026, 1, 1, 6, tzinfo=UTC))
    assert {r.run_id[11:24] for r in runs} == {"2026-01-01T06"}


def test_a_missing_runs_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunsSourceError, match="cannot read runs file"):
        RunsFileSource(tmp_path / "none.json").fetch()
