"""Finished runs from Airflow's REST API v2 (the provider's API client, real httpx, against a local
stand-in that pages like the api-server) and from files of the same JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from shadow_fakes import AirflowApiServer, serve
from shadow_site import free_port

from qubinode_recovery_provider.airflow_api import AirflowAPIClient, APISettings
from qubinode_recovery_provider.shadow import AirflowRunsSource, RunsFileSource, RunsSourceError


@contextmanager
def api_source(
    url: str, page_size: int = 100, runs_per_batch: int = 50, **login: Any
) -> Iterator[AirflowRunsSource]:
    """A source over a client of ``url`` (``username``/``password``/``token``/``timeout`` in ``login``)."""
    with AirflowAPIClient(APISettings.from_url(url, **login)) as client:
        yield AirflowRunsSource(client, page_size=page_size, runs_per_batch=runs_per_batch)


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
    with (
        serve(api.handle) as served,
        api_source(served.url, username="admin", password="secret", page_size=3, runs_per_batch=4) as source,
    ):
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
    with serve(api.handle) as served, api_source(served.url, token="static-token", page_size=3) as source:
        runs = source.fetch()
    assert len(runs) == 14
    assert all(len(r.tasks or ()) == 2 for r in runs)
    pages = [p for m, p in served.requests if p == "/api/v2/dags/~/dagRuns"]
    assert len(pages) == 5  # 14 runs, 3 a page: the cursor first, then offsets


def test_bad_credentials_stop_the_scan_with_a_clear_error(api: AirflowApiServer) -> None:
    with (
        serve(api.handle) as served,
        api_source(served.url, username="admin", password="wrong") as source,
        pytest.raises(RunsSourceError, match="HTTP 401") as info,
    ):
        source.fetch()
    assert str(info.value) == f"Airflow API at {served.url}: login failed: HTTP 401: Invalid credentials"
    assert "wrong" not in str(info.value)


def test_an_unreachable_api_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qubinode_recovery_provider.airflow_api.RETRY_PAUSE_SECONDS", 0.01)
    url = f"http://127.0.0.1:{free_port()}"
    with api_source(url, token="t", timeout=2) as source, pytest.raises(RunsSourceError, match="unusable"):
        source.fetch()


def test_unreadable_dag_params_are_a_warning(api: AirflowApiServer) -> None:
    def handle(method: str, path: str, query: dict, body: Any, headers: dict) -> tuple[int, Any]:
        if path.endswith("/details"):
            return 403, {"detail": "Forbidden"}
        return api.handle(method, path, query, body, headers)

    with serve(handle) as served, api_source(served.url, token="static-token") as source:
        runs = source.fetch()
    assert len(runs) == 14
    assert all(r.dag_params is None for r in runs)
    assert "params of DAG build_vm unreadable (HTTP 403)" in " ".join(source.report.warnings)
    assert repr(source) == f"AirflowRunsSource({served.url!r})"


def test_odd_items_from_the_api_are_skipped(api: AirflowApiServer) -> None:
    def handle(method: str, path: str, query: dict, body: Any, headers: dict) -> tuple[int, Any]:
        status, page = api.handle(method, path, query, body, headers)
        if path == "/api/v2/dags/~/dagRuns":
            key, offset, odd = "dag_runs", int(query.get("offset", ["0"])[0]), "not a run"
        elif path.endswith("/taskInstances/list"):
            key, offset, odd = "task_instances", body["page_offset"], 7
        else:
            return status, page
        if offset + len(page[key]) >= page["total_entries"]:  # the last page: the offsets stay the server's
            page[key].append(odd)
        return status, page

    with serve(handle) as served, api_source(served.url, token="static-token") as source:
        runs = source.fetch()
    assert len(runs) == 14
    assert all(len(r.tasks or ()) == 2 for r in runs)
    assert source.report.skipped >= 2  # a run and a task instance that are not JSON objects


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


def test_a_url_instead_of_a_client_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match="takes an AirflowAPIClient"):
        AirflowRunsSource("http://api-server:8080")  # type: ignore[arg-type]  # the old signature


def test_a_conf_key_written_with_escapes_is_still_read(tmp_path: Path) -> None:
    """The typed reader skips a conf without the key's bytes; an escaped key (``\\u005f``) has a
    backslash, so it is decoded and read."""
    run = dag_run("build_vm", "r1", "2026-01-01T06:00:00+00:00", conf={"other": 1})
    text = json.dumps({"dag_runs": [run, {**run, "dag_run_id": "r2", "conf": {"qubinode_vm": "lab/web1"}}]})
    path = tmp_path / "runs.json"
    path.write_text(text.replace('"qubinode_vm"', '"qubinode\\u005fvm"'))
    runs = {r.run_id: r for r in RunsFileSource(path).fetch()}
    assert runs["r1"].conf == {}
    assert runs["r2"].conf == {"qubinode_vm": "lab/web1"}
