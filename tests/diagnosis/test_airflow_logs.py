"""Tests of the Airflow 3 task log reader (qubinode_recovery_provider.diagnosis.logs)."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
import structlog

from qubinode_recovery_provider.diagnosis.logs import (
    attempt_log_path,
    parse_log_line,
    read_log_tail,
    render_exception,
    render_record,
    tail_text,
)

_TI = {
    "ti_id": "01a220d7-fdb7-7ebf-b125-23b4076165c3",
    "try_number": 1,
    "run_id": "manual__2026-11-28T06:29:15.803742+00:00",
    "dag_id": "qrp_fail",
    "map_index": -1,
    "task_id": "boom",
}
_SITE = "/work/main/.venv/lib/python3.11/site-packages/airflow"

#: A real attempt log: Airflow 3.3 (task SDK 1.3) LocalExecutor, a PythonOperator that prints, logs a
#: warning and raises ConnectionRefusedError. Records are kept as dicts (the file is compact JSON in the
#: same key order, which ``json.dumps(..., separators=(",", ":"))`` reproduces byte for byte).
REAL_RECORDS: list[dict[str, Any]] = [
    {
        "timestamp": "2026-11-28T06:29:16.582537Z",
        "level": "info",
        "event": "::group::Pre Execute",
        "logger": "task",
        "filename": "task_runner.py",
        "lineno": 2412,
    },
    {
        "timestamp": "2026-11-28T06:29:20.040777Z",
        "level": "info",
        "event": "DAG bundles loaded: dags-folder",
        **_TI,
        "logger": "airflow.dag_processing.bundles.manager.DagBundlesManager",
        "filename": "manager.py",
        "lineno": 304,
    },
    {
        "timestamp": "2026-11-28T06:29:20.097540Z",
        "level": "info",
        "event": "::endgroup::",
        **_TI,
        "logger": "task",
        "filename": "task_runner.py",
        "lineno": 2232,
    },
    {
        "timestamp": "2026-11-28T06:29:20.104632Z",
        "level": "info",
        "event": "about to connect",
        "logger": "task.stdout",
    },
    {
        "timestamp": "2026-11-28T06:29:20.102479Z",
        "level": "warning",
        "event": "warning before failure",
        "logger": "unusual_prefix_f896b36933ed58bc8130621dbb73af4e8badd030_fail_dag",
        **_TI,
        "filename": "fail_dag.py",
        "lineno": 9,
    },
    {
        "timestamp": "2026-11-28T06:29:20.103055Z",
        "level": "error",
        "event": "Task failed with exception",
        **_TI,
        "logger": "task",
        "filename": "task_runner.py",
        "lineno": 1676,
        "error_detail": [
            {
                "exc_type": "ConnectionRefusedError",
                "exc_value": "[Errno 111] Connection refused: libvirt at qemu:///system",
                "exc_notes": [],
                "syntax_error": None,
                "is_cause": False,
                "frames": [
                    {
                        "filename": f"{_SITE}/sdk/execution_time/task_runner.py",
                        "lineno": 1579,
                        "name": "_run_task_and_map_outcome",
                    },
                    {
                        "filename": f"{_SITE}/providers/standard/operators/python.py",
                        "lineno": 254,
                        "name": "execute_callable",
                    },
                    {"filename": "/tmp/afhome.B2Kw/dags/fail_dag.py", "lineno": 10, "name": "boom"},
                ],
                "is_group": False,
                "exceptions": [],
            }
        ],
    },
    {
        "timestamp": "2026-11-28T06:29:20.103992Z",
        "level": "info",
        "event": "::group::Post Execute",
        **_TI,
        "logger": "task",
        "filename": "task_runner.py",
        "lineno": 1677,
    },
    {
        "timestamp": "2026-11-28T06:29:20.109208Z",
        "level": "info",
        "event": "::endgroup::",
        **_TI,
        "logger": "task",
        "filename": "task_runner.py",
        "lineno": 2379,
    },
]

REAL_TEXT = [
    "::group::Pre Execute",
    "DAG bundles loaded: dags-folder",
    "::endgroup::",
    "about to connect",
    "warning before failure",
    "Task failed with exception",
    "ConnectionRefusedError: [Errno 111] Connection refused: libvirt at qemu:///system",
    "::group::Post Execute",
    "::endgroup::",
]


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)


def _structlog_detail(exc: BaseException) -> list[dict[str, Any]]:
    """The ``exception`` value structlog's dict traceback renderer (as Airflow configures it) produces."""
    transformer = structlog.tracebacks.ExceptionDictTransformer(use_rich=False, show_locals=False)
    return json.loads(json.dumps(transformer((type(exc), exc, exc.__traceback__))))


def _raise_chained() -> None:
    try:
        {}["libvirt_uri"]
    except KeyError as exc:
        raise RuntimeError("could not build the connection") from exc


# ---------------------------------------------------------------------------------------------- paths


def test_attempt_log_path_matches_airflow_default_template(tmp_path: Path) -> None:
    path = attempt_log_path(tmp_path, "qrp_fail", "manual__2026-11-28T06:29:15.803742+00:00", "boom", 1)
    assert path == (
        tmp_path
        / "dag_id=qrp_fail"
        / "run_id=manual__2026-11-28T06:29:15.803742+00:00"
        / "task_id=boom"
        / "attempt=1.log"
    )


def test_attempt_log_path_mapped_task_has_map_index_level() -> None:
    path = attempt_log_path("/logs", "d", "r", "t", 3, map_index=0)
    assert path == Path("/logs/dag_id=d/run_id=r/task_id=t/map_index=0/attempt=3.log")


@pytest.mark.parametrize("bad", ["../../etc", "a/b", "", "x\x00y"])
def test_attempt_log_path_rejects_ids_that_escape_the_folder(bad: str) -> None:
    with pytest.raises(ValueError, match="log path"):
        attempt_log_path("/logs", "dag", bad, "task", 1)


# ------------------------------------------------------------------------------------- real log file


def test_real_airflow3_log_is_rendered_with_the_exception_last_line(tmp_path: Path) -> None:
    path = attempt_log_path(tmp_path, "qrp_fail", _TI["run_id"], "boom", 1)
    path.parent.mkdir(parents=True)
    path.write_text(_jsonl(REAL_RECORDS), encoding="utf-8")

    assert read_log_tail(path, 500) == REAL_TEXT
    assert read_log_tail(path, 4) == REAL_TEXT[-4:]


def test_max_lines_counts_rendered_lines_not_records(tmp_path: Path) -> None:
    path = tmp_path / "attempt=1.log"
    path.write_text(_jsonl(REAL_RECORDS[:6]), encoding="utf-8")
    # the last record renders to two lines: the message and the exception
    assert read_log_tail(path, 2) == REAL_TEXT[5:7]
    assert read_log_tail(path, 1) == [REAL_TEXT[6]]
    assert read_log_tail(path, 0) == []


# ----------------------------------------------------------------------------------- error rendering


def test_chained_exception_renders_causes_first_like_python() -> None:
    with pytest.raises(RuntimeError) as info:
        _raise_chained()
    detail = _structlog_detail(info.value)
    assert [stack["exc_type"] for stack in detail] == ["RuntimeError", "KeyError"]
    assert render_exception(detail) == [
        "KeyError: 'libvirt_uri'",
        "RuntimeError: could not build the connection",
    ]


def test_exception_group_members_follow_the_group_line() -> None:
    group = ExceptionGroup("two probes failed", [ValueError("bad port"), TimeoutError()])
    try:
        raise group
    except ExceptionGroup as exc:
        detail = _structlog_detail(exc)
    assert render_exception(detail) == [
        "ExceptionGroup: two probes failed (2 sub-exceptions)",
        "ValueError: bad port",
        "TimeoutError",
    ]


def test_exception_key_from_the_task_process_is_rendered_too() -> None:
    with pytest.raises(RuntimeError) as info:
        _raise_chained()
    record = {"event": "Task failed", "exception": _structlog_detail(info.value)}
    assert render_record(record)[-1] == "RuntimeError: could not build the connection"


def test_string_traceback_and_multiline_values_become_separate_lines() -> None:
    traceback_text = 'Traceback (most recent call last):\n  File "x.py", line 1\nOSError: disk full'
    record = {"event": "first\nsecond", "exception": traceback_text}
    assert render_record(record) == [
        "first",
        "second",
        "Traceback (most recent call last):",
        '  File "x.py", line 1',
        "OSError: disk full",
    ]
    multi = [{"exc_type": "CalledProcessError", "exc_value": "stderr:\nvirsh: error: no domain"}]
    assert render_exception(multi) == ["CalledProcessError: stderr:", "virsh: error: no domain"]


# ------------------------------------------------------------------------------- robustness of lines


@pytest.mark.parametrize(
    "line",
    [
        '{"timestamp":"2026-11-28T06:29:20Z","level":"error","event":"cut off in the midd',
        "{not json at all",
        '{"level": "info", "logger": "task"}',
        "[2024-05-01, 10:00:00 UTC] {taskinstance.py:441} ERROR - Task failed",
        "[1, 2, 3]",
    ],
)
def test_lines_that_are_not_json_records_are_kept_verbatim(line: str) -> None:
    assert parse_log_line(line) == [line]


def test_broken_and_plain_lines_survive_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "attempt=2.log"
    broken = '{"timestamp":"2026-11-28T06:29:20Z","event":"truncated by a crash'
    content = (
        _jsonl([{"event": "before"}])
        + broken
        + "\n\n"
        + "plain stderr line\r\n"
        + _jsonl([{"event": "after"}])
    )
    path.write_text(content, encoding="utf-8", newline="")
    assert read_log_tail(path, 10) == ["before", broken, "plain stderr line", "after"]


def test_invalid_utf8_and_missing_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "attempt=3.log"
    path.write_bytes(b'{"event":"ok"}\n\xff\xfe binary junk\n{"event":"last, no newline"}')
    lines = read_log_tail(path, 10)
    assert lines[0] == "ok"
    assert lines[1].endswith("binary junk")
    assert lines[2] == "last, no newline"


def test_missing_file_and_directory_give_empty_list(tmp_path: Path) -> None:
    assert read_log_tail(tmp_path / "nope" / "attempt=1.log", 100) == []
    assert read_log_tail(tmp_path, 100) == []


# -------------------------------------------------------------------------------------- big files


def test_tail_of_a_50mb_file_reads_only_the_end(tmp_path: Path) -> None:
    path = tmp_path / "attempt=1.log"
    padding = "x" * 150
    with path.open("w", encoding="utf-8") as handle:
        number = 0
        while handle.tell() < 50 * 1024 * 1024:
            handle.writelines(
                json.dumps({"timestamp": "t", "level": "info", "event": f"line {number + i} {padding}"})
                + "\n"
                for i in range(1000)
            )
            number += 1000
        handle.write(json.dumps({"event": "Task failed", "error_detail": [{"exc_type": "OSError"}]}) + "\n")
    assert path.stat().st_size > 50 * 1024 * 1024

    tracemalloc.start()
    try:
        lines = read_log_tail(path, 200)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert lines[-2:] == ["Task failed", "OSError"]
    assert len(lines) == 200
    assert lines[0] == f"line {number - 198} {padding}"
    assert peak < 2 * 1024 * 1024, f"peak {peak} bytes: the reader did not stay at the end of the file"


def test_a_huge_single_line_is_bounded_by_max_bytes(tmp_path: Path) -> None:
    path = tmp_path / "attempt=1.log"
    with path.open("w", encoding="utf-8") as handle:
        handle.write('{"event":"start"}\n')
        handle.write('{"event":"' + "y" * (20 * 1024 * 1024) + '"}\n')

    tracemalloc.start()
    try:
        lines = read_log_tail(path, 10, max_bytes=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(lines) == 1
    assert lines[0].startswith("[truncated] ")
    assert lines[0].endswith('y"}')
    assert len(lines[0]) < 3000
    assert peak < 4 * 1024 * 1024


def test_lines_longer_than_a_block_are_reassembled(tmp_path: Path) -> None:
    path = tmp_path / "attempt=1.log"
    long_message = "z" * 300_000
    path.write_text(_jsonl([{"event": "a"}, {"event": long_message}, {"event": "b"}]), encoding="utf-8")
    assert read_log_tail(path, 3) == ["a", long_message, "b"]


# ---------------------------------------------------------------------------------------- tail_text


def test_tail_text() -> None:
    assert tail_text("a\nb\nc\n", 2) == ["b", "c"]
    assert tail_text("a\nb", 10) == ["a", "b"]
    assert tail_text("", 5) == []
    assert tail_text("a\nb", 0) == []
