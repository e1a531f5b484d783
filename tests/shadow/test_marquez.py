"""Marquez as a lineage source: the real HTTP client against a local server answering per Marquez's
OpenAPI spec (its responses are validated against the spec's schemas), fed with real events."""

from __future__ import annotations

import json
from datetime import UTC, datetime
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
