"""Hostile shapes in the shadow scan's inputs are counted warnings, never tracebacks."""

from __future__ import annotations

from pathlib import Path

import pytest

from qubinode_recovery_provider.shadow.olevents import EventError, decode_event
from qubinode_recovery_provider.shadow.runs import RunCollector, RunsFileSource, run_from, task_from

DEEP = "[" * 100_000 + "]" * 100_000


def test_a_lineage_event_nested_too_deeply_is_an_event_error() -> None:
    with pytest.raises(EventError, match="nested too deeply"):
        decode_event('{"eventType": "FAIL", "run": ' + DEEP + "}")


def test_a_lineage_event_nested_too_deeply_in_a_skipped_field_is_an_event_error() -> None:
    """The typed decoder counts the levels of the fields it skips too: a malformed line, not an abort."""
    with pytest.raises(EventError, match="nested too deeply"):
        decode_event('{"eventType": "FAIL", "unknown": ' + DEEP + "}")


def test_a_runs_file_with_a_deep_line_and_odd_items_keeps_the_good_run(tmp_path: Path) -> None:
    good = (
        '{"dag_id": "build_vm", "dag_run_id": "r1", "state": "success", "end_date": "2026-01-01T00:00:00Z"}'
    )
    path = tmp_path / "runs.jsonl"
    path.write_text('{"dag_runs": ' + DEEP + "}\n" + '{"dag_runs": [5, "x", [1], null, ' + good + "]}\n")
    source = RunsFileSource(path)
    runs = source.fetch()
    assert [(r.dag_id, r.run_id) for r in runs] == [("build_vm", "r1")]
    assert source.report.skipped == 5
    assert any("nested too deeply" in warning for warning in source.report.warnings)


@pytest.mark.parametrize("item", [5, "run", [1, 2], None, 1.5, True])
def test_an_item_that_is_not_an_object_is_skipped(item: object) -> None:
    assert run_from(item) is None
    assert task_from(item) is None
    collector = RunCollector()
    collector.add_run(item)
    assert collector.report.skipped == 1
