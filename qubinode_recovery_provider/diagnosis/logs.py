"""Read the end of an Airflow 3 task attempt log.

Airflow 3's supervisor writes each attempt's log as JSON lines, one structlog record per line, e.g.::

    {"timestamp": "...", "level": "error", "event": "Task failed with exception", "logger": "task",
     "error_detail": [{"exc_type": "ConnectionRefusedError", "exc_value": "[Errno 111] ...",
                       "exc_notes": [], "syntax_error": null, "is_cause": false,
                       "frames": [{"filename": "...", "lineno": 10, "name": "boom"}],
                       "is_group": false, "exceptions": []}]}

``error_detail`` is structlog's dict traceback (the task process sends it as ``exception``; the supervisor
renames it). Its first stack is the exception that was raised, the following ones its causes. This module
turns such records into the plain lines the analyzer reads, with each exception rendered as
``ExcType: value`` in Python's order (causes first, the raised exception last), and reads only the end
of the file, so memory stays bounded however large the log is.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from qubinode_recovery_provider.diagnosis.preprocess import json_too_deep

BLOCK_SIZE = 64 * 1024
#: The most bytes :func:`read_log_tail` reads from the end of a file, whatever ``max_lines`` is.
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
#: Characters kept from a line cut in half by the byte budget.
TRUNCATED_KEEP_CHARS = 2000
MAX_EXCEPTION_DEPTH = 8

_MESSAGE_KEYS = ("event", "message", "msg")
_EXCEPTION_KEYS = ("error_detail", "exception")


def attempt_log_path(
    base: str | os.PathLike[str],
    dag_id: str,
    run_id: str,
    task_id: str,
    try_number: int,
    map_index: int = -1,
) -> Path:
    """Return where Airflow's default ``log_filename_template`` puts one attempt's log.

    The template is ``dag_id=<d>/run_id=<r>/task_id=<t>/[map_index=<n>/]attempt=<n>.log``; the
    ``map_index`` level only exists for mapped task instances (``map_index >= 0``).

    :param base: the base log folder (``[logging] base_log_folder``).
    :param dag_id: the DAG id.
    :param run_id: the DAG run id, used verbatim as Airflow does.
    :param task_id: the task id.
    :param try_number: the attempt number (1 for the first try).
    :param map_index: the map index, -1 for an unmapped task.
    :raises ValueError: when an id contains a path separator or a NUL byte.
    """
    for label, value in (("dag_id", dag_id), ("run_id", run_id), ("task_id", task_id)):
        if not value or any(bad in value for bad in ("/", "\\", "\x00")):
            raise ValueError(f"{label} {value!r} cannot be part of a log path")
    path = Path(base) / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    if map_index >= 0:
        path = path / f"map_index={map_index}"
    return path / f"attempt={int(try_number)}.log"


def tail_text(text: str, max_lines: int) -> list[str]:
    """Return the last ``max_lines`` lines of ``text``.

    :param text: any text (a traceback, a captured stdout).
    :param max_lines: how many lines to keep; 0 or less keeps none.
    """
    if max_lines <= 0 or not text:
        return []
    return text.splitlines()[-max_lines:]


def _exception_line(exc_type: str, exc_value: str) -> list[str]:
    """Render one exception the way Python's traceback ends: ``ExcType: value``.

    :param exc_type: the exception class name.
    :param exc_value: ``str()`` of the exception (may be empty or span lines).
    """
    text = f"{exc_type}: {exc_value}" if exc_value else exc_type
    return text.splitlines() or [exc_type]


def _render_stack(stack: Mapping[str, Any], depth: int) -> list[str]:
    """Render one structlog stack dict, with the members of an exception group after it.

    :param stack: ``{"exc_type", "exc_value", "is_group", "exceptions", ...}``.
    :param depth: nesting level, to stop on absurdly deep groups.
    """
    lines = _exception_line(str(stack.get("exc_type") or "Exception"), str(stack.get("exc_value") or ""))
    members = stack.get("exceptions")
    if stack.get("is_group") and isinstance(members, list):
        for member in members:
            lines.extend(render_exception(member, depth + 1))
    return lines


def render_exception(detail: Any, depth: int = 0) -> list[str]:
    """Render an ``error_detail`` / ``exception`` value of a JSON log record as text lines.

    Accepts structlog's dict traceback (a list of stacks, or ``{"stacks": [...]}``), a single stack
    dict, or an already formatted traceback string.

    :param detail: the value found in the record.
    :param depth: nesting level (exception groups), callers leave it at 0.
    """
    if depth > MAX_EXCEPTION_DEPTH or detail is None:
        return []
    if isinstance(detail, str):
        return detail.splitlines()
    if isinstance(detail, Mapping):
        if "stacks" in detail:
            return render_exception(detail["stacks"], depth)
        return _render_stack(detail, depth) if "exc_type" in detail else []
    if isinstance(detail, list):
        lines: list[str] = []
        # structlog lists the raised exception first and its causes after; Python prints causes first.
        for stack in reversed(detail):
            lines.extend(render_exception(stack, depth))
        return lines
    return [str(detail)]


def render_record(record: Mapping[str, Any]) -> list[str]:
    """Turn one decoded JSON log record into text lines: its message, then any exception.

    :param record: the decoded record.
    :return: the lines; empty when the record has neither a message nor an exception.
    """
    lines: list[str] = []
    for key in _MESSAGE_KEYS:
        if record.get(key) is not None:
            lines.extend(str(record[key]).splitlines())
            break
    for key in _EXCEPTION_KEYS:
        if key in record:
            lines.extend(render_exception(record[key]))
    return lines


def parse_log_line(line: str) -> list[str]:
    """Render one physical log line: JSON records become their text, anything else stays as it is.

    A line that looks like JSON but does not decode, or nests deeper than
    :data:`~.preprocess.MAX_JSON_DEPTH` levels, is kept verbatim, so nothing is lost.

    :param line: one line of the log file, without its newline.
    """
    stripped = line.strip()
    if not stripped.startswith("{") or json_too_deep(stripped):
        return [line]
    try:
        record = json.loads(stripped)
        if not isinstance(record, dict):
            return [line]
        return render_record(record) or [line]
    except (ValueError, RecursionError):  # not JSON, or nested beyond what Python can walk
        return [line]


def _reverse_lines(handle: IO[bytes], max_bytes: int) -> Iterator[bytes]:
    """Yield the lines of a binary file from the last to the first, reading backwards in blocks.

    At most ``max_bytes`` are read. A line cut by that budget is yielded as its last
    :data:`TRUNCATED_KEEP_CHARS` bytes behind a ``[truncated]`` marker.

    :param handle: a seekable binary file.
    :param max_bytes: the read budget.
    """
    position = handle.seek(0, os.SEEK_END)
    budget = max(max_bytes, 0)
    partial: list[bytes] = []  # pieces of the line being assembled, last piece first
    while position > 0 and budget > 0:
        size = min(BLOCK_SIZE, position, budget)
        position -= size
        budget -= size
        handle.seek(position)
        block = handle.read(size)
        pieces = block.split(b"\n")
        if len(pieces) == 1:
            partial.append(block)
            continue
        yield pieces[-1] + b"".join(reversed(partial))
        yield from reversed(pieces[1:-1])
        partial = [pieces[0]]
    rest = b"".join(reversed(partial))
    if position == 0:
        yield rest
    elif rest:
        yield b"[truncated] " + rest[-TRUNCATED_KEEP_CHARS:]


def read_log_tail(
    path: str | os.PathLike[str], max_lines: int, max_bytes: int = DEFAULT_MAX_BYTES
) -> list[str]:
    """Return the last ``max_lines`` text lines of a task log, reading only the end of the file.

    JSON records are rendered with :func:`parse_log_line`; plain and broken lines are kept as text.
    A missing or unreadable file gives an empty list; this function never raises ``OSError``.

    :param path: the attempt log file.
    :param max_lines: how many rendered lines to return; 0 or less returns none.
    :param max_bytes: the most bytes read from the end of the file.
    """
    if max_lines <= 0:
        return []
    groups: list[list[str]] = []
    count = 0
    try:
        with open(path, "rb") as handle:
            for raw in _reverse_lines(handle, max_bytes):
                text = raw.decode("utf-8", errors="replace").rstrip("\r")
                if not text.strip():
                    continue
                rendered = parse_log_line(text)
                groups.append(rendered)
                count += len(rendered)
                if count >= max_lines:
                    break
    except (OSError, ValueError):
        pass
    lines = [line for group in reversed(groups) for line in group]
    return lines[-max_lines:]
