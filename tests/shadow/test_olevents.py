"""The file reader's fused step (:func:`olevents.add_event`) against decoding a record, then indexing it.

``add_event`` takes the usual Airflow task event from the typed struct straight to the index; every
other line goes through :func:`olevents.decode_event` and :meth:`LineageIndex.add`. Both must leave
the same index, the same counts and the same errors, for real events and for hostile lines alike.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from shadow_site import REAL_EVENTS

from qubinode_recovery_provider.shadow import lineage_file as lf
from qubinode_recovery_provider.shadow import olevents
from qubinode_recovery_provider.shadow.lineage import LineageIndex
from qubinode_recovery_provider.shadow.olevents import EventError, add_event, decode_event


def _real() -> list[dict[str, Any]]:
    return [json.loads(line) for line in REAL_EVENTS.read_text().splitlines() if line.strip()]


def _task_event() -> dict[str, Any]:
    """A real task event that declares a libvirt output."""
    return next(e for e in _real() if e["job"]["facets"]["jobType"]["jobType"] == "TASK" and e["outputs"])


def _variant(change: Callable[[dict[str, Any]], Any]) -> bytes:
    event = copy.deepcopy(_task_event())
    change(event)
    return json.dumps(event).encode()


def _airflow(event: dict[str, Any]) -> dict[str, Any]:
    facet: dict[str, Any] = event["run"]["facets"]["airflow"]
    return facet


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change setting ``value`` at a dotted path (``run.facets.airflow.task.task_id``)."""

    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = event
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _drop(path: str) -> Callable[[dict[str, Any]], None]:
    def change(event: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = event
        for part in parents:
            node = node[part]
        node.pop(last, None)

    return change


TASK = "run.facets.airflow.task.task_id"
TRY = "run.facets.airflow.taskInstance.try_number"
MAP = "run.facets.airflow.taskInstance.map_index"


def _hostile() -> list[bytes]:
    plain = _variant(lambda e: None)
    deep = "[" * 5_000 + "]" * 5_000
    return [
        plain,
        b"\xef\xbb\xbf" + plain,  # a byte-order mark: malformed for both
        plain[:-1],  # truncated
        plain.replace(b'"eventType": "', b'"eventType": "FAIL", "eventType": "', 1),  # duplicate keys
        plain.replace(b'"run_id": "', b'"run_id": "other", "run_id": "', 1),
        plain.replace(b'"outputs": [', b'"outputs": [], "outputs": [', 1),
        _variant(_set("run.facets.airflow.dag.dag_id", None)),  # the dagRun's dag_id then
        _variant(
            lambda e: (
                _set("run.facets.airflow.dag.dag_id", None)(e),
                _drop("run.facets.airflow.dagRun.dag_id")(e),
            )
        ),  # the parent job's name then
        _variant(_set("run.facets.airflow.dag.dag_id", "")),
        _variant(_set("run.facets.airflow.dagRun.run_id", None)),  # held for the parent run
        _variant(_set(TASK, None)),  # the job name's task
        _variant(_set(TASK, "")),
        _variant(_set(TASK, 7)),  # wrong types: the tolerant reader
        _variant(_set(TRY, "2")),
        _variant(_set(TRY, True)),
        _variant(_set(TRY, None)),
        _variant(_set(MAP, 3)),
        _variant(_set(MAP, 2.5)),
        _variant(_drop("run.facets.airflow.taskInstance")),
        _variant(_set("run.facets.airflow", None)),
        _variant(_set("run.facets", None)),
        _variant(_set("job.facets.jobType.jobType", "DAG")),
        _variant(_drop("job.facets.jobType")),
        _variant(_set("job.facets", None)),
        _variant(_set("eventType", "")),
        _variant(_set("eventType", 5)),
        _variant(_set("eventType", {})),  # no event type: malformed (not a View's repr in the index)
        _variant(_set("run.facets.airflow.dag.dag_id", ["a", "list"])),  # (was: unhashable, a crash)
        _variant(_set("run.facets.airflow.dagRun.run_id", {"an": "object"})),
        _variant(lambda e: (_set("eventType", "COMPLETE")(e), _set("eventTime", 5)(e))),
        _variant(
            lambda e: (_set("eventType", "FAIL")(e), _set("eventTime", "2026-01-01")(e))
        ),  # (was: 5 >= str)
        _variant(_set("run.facets.airflow.dagRun.conf", {"qubinode_vm": {"name": "web9", "state": 5}})),
        _variant(_set("run.facets.airflow.dagRun.conf", {"qubinode_vm": "libvirt://[lab/web9"})),
        _variant(_drop("run")),
        _variant(_set("run", [])),
        _variant(_set("run.facets.errorMessage", {"message": "boom", "programmingLanguage": "python"})),
        _variant(_set("run.facets.errorMessage", {"message": ["not", "text"]})),
        _variant(_set("run.facets.airflow.dagRun.conf", {"qubinode_vm": "lab/web9"})),
        _variant(_set("run.facets.airflow.dagRun.conf", {"qubinode_vm": "not a valid / uri / at all"})),
        _variant(_set("run.facets.airflow.dagRun.conf", [])),
        _variant(
            _set(
                "outputs",
                [
                    {
                        "namespace": "libvirt://lab",
                        "name": "web9",
                        "facets": {"libvirtDomain": {"expectedState": ["odd"]}},
                    }
                ],
            )
        ),
        _variant(_set("outputs", [{"namespace": "libvirt://lab", "name": 5}])),
        _variant(_set("job.facets.sourceCode", {"sourceCode": "kcli create vm web9 " + "x" * 200_000})),
        _variant(_set("job.facets.sourceCode", {"sourceCode": "echo nothing to see"})),
        plain.replace(b'"outputs": [', b'"deepUnknown": ' + deep.encode() + b', "outputs": [', 1),  # skipped
        b'{"eventType": "START", "run": ' + deep.encode() + b"}",  # deep where a field is read
        b"[]",
        b"null",
        b"not json",
        b'{"eventType": "START", "run": {"runId": "x"}, "job": {"name": "d.t"}}',  # no facets: orphan
    ]


def _old_way(lines: list[bytes], index: LineageIndex) -> list[str]:
    errors = []
    for line in lines:
        try:
            record = decode_event(line)
        except EventError as exc:
            errors.append(str(exc))
        else:
            if record is not None:
                index.add(record)
    return errors


def _fused_way(lines: list[bytes], index: LineageIndex) -> list[str]:
    errors = []
    for line in lines:
        try:
            add_event(line, index)
        except EventError as exc:
            errors.append(str(exc))
    return errors


def _state(index: LineageIndex) -> Any:
    """Everything an index holds, comparable."""
    index.finish()
    runs = {
        key: (
            sorted(run.dag_types),
            run.dag_terminal,
            run.dag_run_state,
            run.tasks_state,
            run.announced,
            run.conf_declared,
            run.events,
            {
                task_key: (
                    sorted(task.types),
                    task.terminal,
                    task.outputs,
                    task.error,
                    task.events,
                    task.source_code,
                )
                for task_key, task in run.tasks.items()
            },
        )
        for key, run in index.runs.items()
    }
    report = (index.report.items, index.report.skipped, index.report.warnings)
    return runs, report, index.other_runs, index.unattributed, index._ol_runs


@pytest.mark.parametrize("wanted", [None, "some", "none"])
def test_the_fused_step_leaves_what_decoding_then_indexing_left(wanted: str | None) -> None:
    lines = [json.dumps(e).encode() for e in _real()] + _hostile()
    keep = {
        None: None,
        "some": {("example_kcli_deploy_db", "manual__2026-11-28T06:55:07.194990+00:00")},
        "none": set(),
    }[wanted]
    old, fused = LineageIndex(keep), LineageIndex(keep)
    old_errors, fused_errors = _old_way(lines, old), _fused_way(lines, fused)
    assert fused_errors == old_errors
    assert len(old_errors) >= 5  # BOM, truncated, deep, "[]"/"null", "not json"
    assert _state(fused) == _state(old)


def test_every_hostile_line_alone_gives_the_same_error_or_the_same_index() -> None:
    for line in _hostile():
        old, fused = LineageIndex(None), LineageIndex(None)
        assert _fused_way([line], fused) == _old_way([line], old), line[:80]
        assert _state(fused) == _state(old), line[:80]


def test_the_usual_task_event_takes_the_fused_path() -> None:
    if olevents.msgspec is None:  # pragma: no cover
        pytest.fail("msgspec (an Airflow dependency) is expected in the test environment")
    index = LineageIndex(None)
    event = olevents._DECODER.decode(_variant(lambda e: None))
    assert olevents._add_task_event(event, index)
    assert index.report.items == 1
    for change in (_set("job.facets.jobType.jobType", "DAG"), _set("run.facets.airflow.dagRun.run_id", None)):
        other = olevents._DECODER.decode(_variant(change))
        assert not olevents._add_task_event(other, index)  # the general path, index untouched
    assert index.report.items == 1


def test_a_file_of_hostile_lines_counts_the_same_malformed_lines(tmp_path: Path) -> None:
    lines = [json.dumps(e).encode() for e in _real()] + _hostile() + [b"   ", b"\r"]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    read = _read_whole(path)
    old = LineageIndex(None)
    errors = _old_way([line for line in lines if not line.isspace()], old)
    assert read.bad_count == len(errors)
    assert [reason for _, reason in read.bad] == errors[: lf._MAX_BAD_LINES]
    assert read.lines == len(lines)
    assert read.index is not None
    assert _state(read.index) == _state(old)


def _read_whole(path: Path) -> lf._Chunk:
    """One whole file through the reader's line loop."""
    with path.open("rb") as handle:
        return lf._read_lines(handle, LineageIndex(None))


def test_a_line_with_ids_or_times_of_other_types_is_read_or_malformed_never_a_crash() -> None:
    """The tolerant reader's ids and times are text or None (a list key was unhashable, a number time
    failed to compare with a text one, an object's repr became an event type)."""
    index = LineageIndex(None)
    with pytest.raises(EventError, match="eventType"):
        add_event(_variant(_set("eventType", {"a": 1})), index)
    add_event(_variant(_set("run.facets.airflow.dag.dag_id", ["a"])), index)  # the dagRun's dag_id then
    add_event(_variant(lambda e: (_set("eventType", "COMPLETE")(e), _set("eventTime", 5)(e))), index)
    add_event(_variant(lambda e: (_set("eventType", "FAIL")(e), _set("eventTime", "2026")(e))), index)
    add_event(
        _variant(_set("run.facets.airflow.dagRun.conf", {"qubinode_vm": {"name": "w", "state": 5}})), index
    )
    (run,) = index.runs.values()
    (task,) = run.tasks.values()
    assert task.terminal is not None
    assert task.terminal[1:] == ("5", "COMPLETE")  # ("5" > "2026")
    assert all(type(v) is str for key in index.runs for v in key)
    assert run.conf_declared == ()  # a bad qubinode_vm declares nothing, as for an invalid URI
