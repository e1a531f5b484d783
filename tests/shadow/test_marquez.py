"""Marquez as a lineage source: the real HTTP client against a local server answering per Marquez's
OpenAPI spec (its responses are validated against the spec's schemas), fed with real events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from shadow_fakes import MarquezServer, serve
from shadow_site import REAL_EVENTS, free_port

from qubinode_recovery_provider.shadow import FileLineageSource, MarquezLineageSource
from qubinode_recovery_provider.shadow.lineage import LineageIndex
from qubinode_recovery_provider.shadow.watermarks import OVERLAP

SPEC = Path("/work/shared/specs/marquez-openapi.yml")
SPEC_URN = "urn:marquez-openapi"


def _summary(index: LineageIndex) -> dict[Any, Any]:
    return {
        key: (
            run.dag_terminal[1] if run.dag_terminal else None,
            run.tasks_state,
            {k: (t.terminal_type, sorted(t.outputs)) for k, t in run.tasks.items()},
        )
        for key, run in index.runs.items()
    }


@pytest.fixture(scope="module")
def spec_registry() -> Registry:
    spec = yaml.safe_load(SPEC.read_text())
    return Registry().with_resource(SPEC_URN, Resource(contents=spec, specification=DRAFT7))


def _validate(registry: Registry, schema: str, body: Any) -> None:
    validator = jsonschema.Draft7Validator(
        {"$ref": f"{SPEC_URN}#/components/schemas/{schema}"}, registry=registry
    )
    validator.validate(body)


@pytest.fixture
def marquez(real_events: list[dict[str, Any]]) -> MarquezServer:
    return MarquezServer(real_events)


def test_the_stand_in_answers_as_the_spec_says(marquez: MarquezServer, spec_registry: Registry) -> None:
    status, namespaces = marquez.handle("GET", "/api/v1/namespaces", {}, None, {})
    assert status == 200
    _validate(spec_registry, "NamespaceList", namespaces)
    checked = {"jobs": 0, "runs": 0, "datasets": 0}
    for namespace in (n["name"] for n in namespaces["namespaces"]):
        quoted = namespace.replace("/", "%2F")
        _, jobs = marquez.handle("GET", f"/api/v1/namespaces/{quoted}/jobs", {}, None, {})
        _validate(spec_registry, "JobList", jobs)
        _, datasets = marquez.handle("GET", f"/api/v1/namespaces/{quoted}/datasets", {}, None, {})
        _validate(spec_registry, "DatasetList", datasets)
        checked["datasets"] += len(datasets["datasets"])
        for job in jobs["jobs"]:
            checked["jobs"] += 1
            _, runs = marquez.handle(
                "GET", f"/api/v1/namespaces/{quoted}/jobs/{job['name']}/runs", {}, None, {}
            )
            _validate(spec_registry, "RunList", runs)
            checked["runs"] += len(runs["runs"])
    assert checked["jobs"] >= 10
    assert checked["runs"] >= 10
    assert checked["datasets"] >= 2


@pytest.mark.parametrize("page_size", [1, 3, 100])
def test_marquez_gives_the_same_lineage_as_the_file(marquez: MarquezServer, page_size: int) -> None:
    with serve(marquez.handle) as served:
        source = MarquezLineageSource(served.url, page_size=page_size)
        index = source.read(None)
    assert index.report.available, index.report.warnings
    assert _summary(index) == _summary(FileLineageSource(REAL_EVENTS).read(None))
    assert source.requests > 1


def test_the_expected_state_comes_from_the_dataset_facet(real_events: list[dict[str, Any]]) -> None:
    for event in real_events:
        for output in event.get("outputs") or []:
            output["facets"]["libvirtDomain"]["expectedState"] = "defined"
    with serve(MarquezServer(real_events).handle) as served:
        index = MarquezLineageSource(served.url).read(None)
    states = {
        d.expected_state
        for run in index.runs.values()
        for t in run.tasks.values()
        for d in t.outputs.values()
    }
    assert states == {"defined"}


def test_only_wanted_dags_and_recent_jobs_are_read(marquez: MarquezServer) -> None:
    key = ("example_kcli_deploy_db", "manual__2026-11-28T06:55:07.194990+00:00")
    with serve(marquez.handle) as served:
        everything = MarquezLineageSource(served.url)
        everything.read(None)
        one_dag = MarquezLineageSource(served.url)
        index = one_dag.read({key})
        later = MarquezLineageSource(served.url)
        stale = later.read({key}, since=datetime(2027, 1, 1, tzinfo=UTC))
    assert list(index.runs) == [key]
    assert one_dag.requests < everything.requests
    assert stale.runs == {}
    assert later.requests < one_dag.requests


def test_a_failing_marquez_is_a_warning(marquez: MarquezServer) -> None:
    marquez.fail_paths.add("/api/v1/namespaces")
    with serve(marquez.handle) as served:
        index = MarquezLineageSource(served.url).read(None)
    assert not index.report.available
    assert "HTTP 500" in index.report.warnings[0]


def test_an_unreachable_marquez_is_a_warning() -> None:
    index = MarquezLineageSource(f"http://127.0.0.1:{free_port()}", timeout=2).read(None)
    assert not index.report.available
    assert "unusable" in index.report.warnings[0]


def test_a_response_nested_too_deeply_is_a_warning_not_a_crash() -> None:
    import httpx

    hostile = b"[" * 200_000 + b"]" * 200_000
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, content=hostile, headers={"Content-Type": "application/json"})
    )
    index = MarquezLineageSource("http://marquez.invalid", transport=transport).read(None)
    assert not index.report.available
    assert index.report.warnings == [
        "marquez: http://marquez.invalid/api/v1 unusable: "
        "GET /namespaces: the answer is not JSON (nested too deeply)"
    ]


def test_a_broken_run_is_skipped_and_counted(marquez: MarquezServer) -> None:
    next(iter(marquez.runs.values()))["facets"] = {"airflow": "not an object"}
    with serve(marquez.handle) as served:
        index = MarquezLineageSource(served.url).read(None)
    assert index.report.available
    assert index.report.skipped == 1
    assert "skipped" in json.dumps(index.report.warnings)


def test_incremental_marquez_walks_back_only_to_the_runs_start_and_keeps_the_last_event_per_namespace(
    marquez: MarquezServer,
) -> None:
    key = ("example_kcli_deploy_db", "manual__2026-11-28T06:55:07.194990+00:00")
    started = datetime(2026, 11, 28, 6, 55, 6, tzinfo=UTC)
    with serve(marquez.handle) as served:
        window = MarquezLineageSource(served.url)
        window.resume({"namespaces": {"other-ns": "2026-11-01T00:00:00+00:00"}}, None, None)
        whole = window.read({key}, since=started)
        resumed = MarquezLineageSource(served.url)
        resumed.resume(None, started, None)
        index = resumed.read({key}, since=started)
        after = MarquezLineageSource(served.url)
        after.resume(None, datetime(2027, 1, 1, tzinfo=UTC), None)
        nothing = after.read({key}, since=started)
    assert _summary(index) == _summary(whole)  # the run's START and COMPLETE are both found
    assert nothing.runs == {}  # walking back to a later moment finds none of them
    position = window.position()
    assert position is not None
    assert position["namespaces"]["other-ns"] == "2026-11-01T00:00:00+00:00"
    assert position["namespaces"]["qubinode-test"].startswith("2026-11-28T06:55")
    assert resumed.watermark_key == f"marquez:{resumed.base_url}"


def _run_copy(events: list[dict[str, Any]], key: tuple[str, str], shift: timedelta, tag: str) -> list[Any]:
    """The events of run ``key`` as another run of the same DAG, ``shift`` later (new ids)."""
    mine = [e for e in events if json.dumps(e).count(key[1])]
    text = json.dumps(mine).replace(key[1], f"{key[1]}-{tag}")
    for run_id in {e["run"]["runId"] for e in mine}:
        text = text.replace(run_id, f"{run_id[: -len(tag)]}{tag}")
    copies = json.loads(text)
    for event in copies:
        moment = datetime.fromisoformat(event["eventTime"]) + shift
        event["eventTime"] = moment.isoformat()
    return copies


def test_the_stand_in_serves_lineage_events_as_the_spec_says(
    marquez: MarquezServer, spec_registry: Registry
) -> None:
    query = {"after": ["2026-11-28T06:55:08+00:00"], "sortDirection": ["asc"], "limit": ["5"]}
    status, body = marquez.handle("GET", "/api/v1/events/lineage", query, None, {})
    assert status == 200
    _validate(spec_registry, "LineageEventList", body)
    times = [e["eventTime"] for e in body["events"]]
    assert times == sorted(times)
    assert len(times) == 5
    assert times[0].startswith("2026-11-28T06:55:08.39")  # the first at or after ``after``
    assert body["totalCount"] == 13


def test_an_incremental_marquez_scan_requests_only_the_events_after_the_watermark(
    real_events: list[dict[str, Any]],
) -> None:
    """The first scan walks the jobs and keeps the last event time per namespace; the second asks the
    events API only for what follows that watermark minus the overlap, and still pairs the new run's
    START and COMPLETE events."""
    key = ("example_kcli_deploy_db", "manual__2026-11-28T06:55:07.194990+00:00")
    history = _run_copy(real_events, key, -timedelta(hours=2), "old")
    server = MarquezServer([*history, *real_events])
    with serve(server.handle) as served:
        first = MarquezLineageSource(served.url, page_size=4)
        first.resume(None, None, None)
        first.read(None)
        watermark = first.position()
        assert watermark is not None
        assert watermark["namespaces"]["qubinode-test"] == "2026-11-28T06:55:37.931953+00:00"
        assert server.event_queries == []  # no watermark yet: the jobs were walked

        new = _run_copy(real_events, key, timedelta(minutes=20), "new")
        for event in new:
            server.ingest(event)
        new_key = (key[0], f"{key[1]}-new")
        started = datetime.fromisoformat(new[0]["eventTime"])
        second = MarquezLineageSource(served.url, page_size=4)
        second.resume(watermark, started - OVERLAP, datetime(2026, 11, 28, 7, 20, tzinfo=UTC))
        paths_before = len(served.requests)
        index = second.read({new_key})
        paths = {path for _, path in served.requests[paths_before:]}
    after = datetime(2026, 11, 28, 6, 55, 37, 931953, tzinfo=UTC) - OVERLAP
    assert paths == {"/api/v1/events/lineage"}  # no job or run listing
    assert {q["after"] for q in server.event_queries} == {after.isoformat()}
    assert {q["sortDirection"] for q in server.event_queries} == {"asc"}
    assert server.events_served == len(real_events) + len(new)  # the old run's events are not sent
    run = index.get(*new_key)
    assert run is not None
    assert run.dag_terminal is not None
    assert {t.terminal_type for t in run.tasks.values()} == {"COMPLETE"}
    assert all("START" in t.types for t in run.tasks.values())
    assert second.position() == {"namespaces": {"qubinode-test": new[-1]["eventTime"]}}
    assert second.resume_note is not None
    assert "events after" in second.resume_note


def test_a_marquez_without_the_events_api_is_walked_from_the_watermark(
    marquez: MarquezServer,
) -> None:
    key = ("example_kcli_deploy_db", "manual__2026-11-28T06:55:07.194990+00:00")
    marquez.fail_paths.add("/api/v1/events/lineage")  # answers 500: an error, not a fallback
    with serve(marquez.handle) as served:
        broken = MarquezLineageSource(served.url)
        broken.resume({"namespaces": {"qubinode-test": "2026-11-28T06:55:20+00:00"}}, None, None)
        failed = broken.read({key})
    assert not failed.report.available

    class Older(MarquezServer):
        def _route(self, parts: list[str], query: dict) -> tuple[int, Any]:
            if parts == ["events", "lineage"]:
                return 404, {"code": 404, "message": "HTTP 404 Not Found"}
            return super()._route(parts, query)

    with serve(Older(marquez.events).handle) as served:
        older = MarquezLineageSource(served.url)
        older.resume({"namespaces": {"qubinode-test": "2026-11-28T06:55:20+00:00"}}, None, None)
        index = older.read({key})
    assert index.report.available
    assert list(index.runs) == [key]
