"""The running task's own log records, kept in memory: the first source of failure evidence.

Under ``airflow dags test`` there is no per-attempt log file; with remote logging, or an executor that
keeps no local file, there is none on the worker either; and under the supervisor the file may not
hold the last lines yet when the retry policy runs. The failing command's output does pass through the
task process's own logging in every execution mode: BashOperator (``SubprocessHook``) and SSHOperator
(``SSHHook``) log each output line with their structlog logger, and ``dags test`` (the task runs in the
CLI process through ``InProcessTestSupervisor``) and the Local, Celery and Kubernetes executors (a child
forked by the supervisor) all run the same ``task_runner`` code.

:func:`ensure_installed` adds two passive observers to this process's logging; both hand on what they
receive unchanged, so the task log looks exactly as before:

- a structlog processor, inserted just before the final renderer in structlog's configured processor
  list (the list object every logger built from the configuration shares, cached or not);
- a stdlib :class:`logging.Handler` on the root logger, for stdlib records (paramiko, libraries); added
  only when the root logger already has a handler, so ``logging.lastResort`` keeps working elsewhere.

In Airflow's logging setup the two paths are disjoint (stdlib records reach structlog processors only
through the root handler's formatter, whose chain is another list), so no record is kept twice.

A record is kept only while a task executes in this process (Airflow's current-context stack is not
empty: from template rendering to the end of ``execute``), under the key of that attempt
``(dag_id, run_id, task_id, map_index, try_number)``; any other record costs one list check. Records of
the task runner's own logger and of the in-process execution API (``dags test``) are no evidence and are
left out (:data:`IGNORED_LOGGERS`, :data:`IGNORED_LOGGER_PREFIXES`). Per attempt
the tail is bounded: the last :data:`MAX_LINES` lines and :data:`MAX_BYTES` bytes, each line cut at
:data:`MAX_LINE_BYTES` bytes, and no record is looked at beyond :data:`MAX_RECORD_CHARS` characters. At
most :data:`MAX_ATTEMPTS` attempts are kept (the oldest is dropped), so a process that runs many tasks
never mixes nor accumulates them. Lines are stored as logged and redacted when read
(:func:`~qubinode_recovery_provider.redaction.strip_control`, then
:func:`~qubinode_recovery_provider.redaction.redact_lines`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any

from qubinode_recovery_provider.redaction import redact_lines, strip_control

#: ``(dag_id, run_id, task_id, map_index, try_number)`` of one task attempt.
AttemptKey = tuple[str, str, str, int, int]

#: Lines kept per attempt.
MAX_LINES = 500
#: Longest line kept, in UTF-8 bytes; the rest of the line is replaced by :data:`TRUNCATED`.
MAX_LINE_BYTES = 8 * 1024
#: Bytes kept per attempt (the oldest lines go first).
MAX_BYTES = 512 * 1024
#: Attempts kept per process (the least recently written goes first).
MAX_ATTEMPTS = 16
#: Characters of one record looked at (a record may hold many lines).
MAX_RECORD_CHARS = 64 * 1024
TRUNCATED = " [truncated]"
#: Loggers whose records are no evidence: the task runner's own (``::group::`` markers, its
#: bookkeeping) and, under ``airflow dags test``, the in-process execution API server's.
IGNORED_LOGGERS = ("task",)
IGNORED_LOGGER_PREFIXES = ("airflow.api_fastapi.",)


def _ignored(logger_name: Any) -> bool:
    """Whether records of this logger are left out (cheap: two string checks).

    :param logger_name: the logger's name, ``None`` when unknown.
    """
    return isinstance(logger_name, str) and (
        logger_name in IGNORED_LOGGERS or logger_name.startswith(IGNORED_LOGGER_PREFIXES)
    )


def attempt_key(dag_id: Any, run_id: Any, task_id: Any, map_index: Any, try_number: Any) -> AttemptKey:
    """Normalise the parts of an attempt's identity into an :data:`AttemptKey`.

    :param dag_id: the DAG id.
    :param run_id: the DAG run id.
    :param task_id: the task id.
    :param map_index: the map index (``None`` counts as -1, not mapped).
    :param try_number: the attempt (1-based).
    :raises ValueError: when ``map_index`` or ``try_number`` is not an integer.
    :raises TypeError: likewise.
    """
    return (
        str(dag_id),
        str(run_id),
        str(task_id),
        int(map_index if map_index is not None else -1),
        int(try_number),
    )


def _clip(line: str, limit: int) -> tuple[str, int]:
    """Cut one line to ``limit`` UTF-8 bytes (marked :data:`TRUNCATED`); return it with its size.

    :param line: the line (no newline).
    :param limit: the most bytes kept.
    """
    over = len(line) > limit  # every character is at least one byte
    if over:
        line = line[:limit]
    if line.isascii():
        if not over:
            return line, len(line)
        data = line.encode("ascii")
    else:
        data = line.encode("utf-8", "replace")
        if not over and len(data) <= limit:
            return line, len(data)
    cut = data[: limit - len(TRUNCATED)].decode("utf-8", "ignore") + TRUNCATED
    return cut, len(cut.encode("utf-8", "replace"))


class AttemptTail:
    """The bounded tail of one attempt's records (not thread-safe: :class:`TaskLogCapture` locks).

    :param max_lines: lines kept.
    :param max_bytes: bytes kept.
    """

    __slots__ = ("dropped", "lines", "max_bytes", "size", "sizes")

    def __init__(self, max_lines: int, max_bytes: int) -> None:
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.sizes: deque[int] = deque(maxlen=max_lines)
        self.max_bytes = max_bytes
        self.size = 0
        self.dropped = 0

    def add(self, line: str, size: int) -> None:
        """Append one line, dropping the oldest ones beyond the line and byte budgets.

        :param line: the line, already clipped.
        :param size: its size in bytes.
        """
        if len(self.lines) == self.lines.maxlen:
            self.size -= self.sizes[0]
            self.dropped += 1
        self.lines.append(line)
        self.sizes.append(size)
        self.size += size
        while self.size > self.max_bytes and len(self.lines) > 1:
            self.lines.popleft()
            self.size -= self.sizes.popleft()
            self.dropped += 1


def _record_lines(text: str) -> list[str]:
    """Split one record into lines, looking at no more than :data:`MAX_RECORD_CHARS` characters.

    A long record of many lines gives its last lines (the error is usually at the end); one huge line
    gives its beginning (cut to the line budget later).

    :param text: the record's text.
    """
    if len(text) <= MAX_RECORD_CHARS:
        return text.splitlines() if ("\n" in text or "\r" in text) else [text]
    lines = text[-MAX_RECORD_CHARS:].splitlines()
    if len(lines) > 1:
        return lines[1:]  # the first is the end of a line that began before the window
    return [text[:MAX_RECORD_CHARS]]


def _exception_line(exc: Any) -> str | None:
    """``Type: message`` of an exception found in a record (``exc_info`` or a rendered ``exception``).

    :param exc: ``True``, an exception, an ``exc_info`` tuple, structlog's dict traceback or a string.
    """
    if exc is True:
        exc = sys.exc_info()[1]
    elif isinstance(exc, tuple) and len(exc) == 3:
        exc = exc[1]
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, list) and exc and isinstance(exc[0], Mapping):  # JSON mode: raised one first
        return f"{exc[0].get('exc_type', 'Exception')}: {exc[0].get('exc_value', '')}"
    if isinstance(exc, str) and exc:
        return exc[-MAX_RECORD_CHARS:].rstrip().rsplit("\n", 1)[-1]
    return None


def _airflow_context_stack() -> list[Any] | None:
    """Airflow's stack of current task contexts (pushed around ``execute``), ``None`` without Airflow."""
    try:
        from airflow.sdk.definitions._internal.contextmanager import _CURRENT_CONTEXT
    except Exception:
        return None
    return _CURRENT_CONTEXT if isinstance(_CURRENT_CONTEXT, list) else None


class _CurrentAttempt:
    """The attempt of the task executing in this process, from Airflow's current context (O(1))."""

    def __init__(self) -> None:
        self._stack: list[Any] | None = None
        self._resolved = False
        self._last: tuple[object, AttemptKey | None] = (None, None)

    def __call__(self) -> AttemptKey | None:
        if not self._resolved:
            self._stack = _airflow_context_stack()
            self._resolved = True
        stack = self._stack
        if not stack:
            return None
        ti = stack[-1].get("ti")
        last_ti, last_key = self._last
        if ti is last_ti:
            return last_key
        try:
            key: AttemptKey | None = attempt_key(
                ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1), ti.try_number
            )
        except (AttributeError, TypeError, ValueError):
            key = None
        self._last = (ti, key)  # one assignment: a thread sees the old or the new pair, never a mix
        return key


class TaskLogCapture:
    """Bounded in-memory tails of the records logged while task attempts execute in this process.

    Thread-safe. ``processor`` (structlog) and ``handler`` (stdlib) feed it; :meth:`tail` reads it.

    :param key_source: returns the attempt executing now, or ``None`` (then records are ignored).
    :param max_lines: lines kept per attempt.
    :param max_line_bytes: longest line kept, in bytes.
    :param max_bytes: bytes kept per attempt.
    :param max_attempts: attempts kept.
    """

    def __init__(
        self,
        key_source: Callable[[], AttemptKey | None] | None = None,
        *,
        max_lines: int = MAX_LINES,
        max_line_bytes: int = MAX_LINE_BYTES,
        max_bytes: int = MAX_BYTES,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        if min(max_lines, max_line_bytes, max_bytes, max_attempts) < 1:
            raise ValueError("every TaskLogCapture limit must be at least 1")
        if max_line_bytes <= len(TRUNCATED):
            raise ValueError(f"max_line_bytes must exceed {len(TRUNCATED)}")
        self.key_source: Callable[[], AttemptKey | None] = key_source or _CurrentAttempt()
        self.max_lines = max_lines
        self.max_line_bytes = max_line_bytes
        self.max_bytes = max_bytes
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self._attempts: OrderedDict[AttemptKey, AttemptTail] = OrderedDict()
        self.handler = _CaptureHandler(self)

    # --- writing (the logging hot path) ---------------------------------------------------------

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        """structlog processor: keep the event's text when a task executes; return the event unchanged.

        :param logger: the wrapped logger (unused).
        :param method_name: the level method (unused).
        :param event_dict: the event.
        """
        try:
            key = self.key_source()
            if key is not None and not _ignored(event_dict.get("logger")):
                exc = event_dict.get("exc_info") or event_dict.get("exception")
                self.add(key, event_dict.get("event"), _exception_line(exc) if exc else None)
        except Exception:  # noqa: S110 - a capture problem must never break the task's logging
            pass
        return event_dict

    def add(self, key: AttemptKey, message: Any, exception_line: str | None = None) -> None:
        """Keep one record's text (split into lines, clipped) in the attempt's tail.

        :param key: the attempt.
        :param message: the record's message (non-strings are kept as ``str()``).
        :param exception_line: ``Type: message`` of an exception logged with it.
        """
        if message is None:
            return
        text = message if isinstance(message, str) else str(message)
        if exception_line:
            text = f"{text}\n{exception_line}"
        parts = _record_lines(text)
        clipped = [_clip(part, self.max_line_bytes) for part in parts[-self.max_lines :]]
        with self._lock:
            tail = self._attempts.get(key)
            if tail is None:
                tail = self._attempts[key] = AttemptTail(self.max_lines, self.max_bytes)
                while len(self._attempts) > self.max_attempts:
                    self._attempts.popitem(last=False)
            else:
                self._attempts.move_to_end(key)
            for line, size in clipped:
                tail.add(line, size)

    # --- reading ----------------------------------------------------------------------------------

    def raw_tail(self, key: AttemptKey, max_lines: int | None = None) -> list[str]:
        """The attempt's lines as logged (NOT redacted: for tests and for :meth:`tail`).

        :param key: the attempt.
        :param max_lines: the most lines returned (default: all kept).
        """
        with self._lock:
            tail = self._attempts.get(key)
            lines = list(tail.lines) if tail is not None else []
        if max_lines is not None:
            lines = lines[-max_lines:] if max_lines > 0 else []
        return lines

    def tail(self, key: AttemptKey, max_lines: int | None = None) -> list[str]:
        """The attempt's last lines, control characters stripped and secrets redacted.

        :param key: the attempt.
        :param max_lines: the most lines returned (default: all kept).
        """
        return redact_lines([strip_control(line) for line in self.raw_tail(key, max_lines)])

    def stats(self, key: AttemptKey) -> dict[str, int]:
        """``lines``, ``bytes`` and ``dropped`` (lines that fell out of the budgets) of an attempt.

        :param key: the attempt.
        """
        with self._lock:
            tail = self._attempts.get(key)
            if tail is None:
                return {"lines": 0, "bytes": 0, "dropped": 0}
            return {"lines": len(tail.lines), "bytes": tail.size, "dropped": tail.dropped}

    def attempts(self) -> list[AttemptKey]:
        """The attempts kept, least recently written first."""
        with self._lock:
            return list(self._attempts)

    def clear(self) -> None:
        """Forget every attempt."""
        with self._lock:
            self._attempts.clear()

    def _after_fork(self) -> None:
        """A forked child starts with a fresh lock (the parent's may have been held by another thread)."""
        self._lock = threading.Lock()


class _CaptureHandler(logging.Handler):
    """stdlib handler feeding a :class:`TaskLogCapture`; writes nothing anywhere."""

    def __init__(self, capture: TaskLogCapture) -> None:
        super().__init__()
        self.capture = capture

    def handle(self, record: logging.LogRecord) -> bool:  # no handler lock: the capture has its own
        """Check level and filters, then :meth:`emit`.

        :param record: the record.
        """
        if record.levelno < self.level or not self.filter(record):
            return False
        self.emit(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the record's message when a task executes.

        :param record: the record.
        """
        try:
            key = self.capture.key_source()
            if key is None or isinstance(record.msg, Mapping) or _ignored(record.name):
                return  # no task executing, a structlog event (the processor has it), or no evidence
            exc = _exception_line(record.exc_info) if record.exc_info else None
            self.capture.add(key, record.getMessage(), exc)
        except Exception:  # noqa: S110 - never break the task's logging
            pass


_CAPTURE: list[TaskLogCapture] = []
_INSTALL_LOCK = threading.Lock()


def capture() -> TaskLogCapture:
    """This process's capture (made on first use)."""
    if not _CAPTURE:
        with _INSTALL_LOCK:
            if not _CAPTURE:
                _CAPTURE.append(TaskLogCapture())
    return _CAPTURE[0]


def _install_processor(cap: TaskLogCapture) -> bool:
    """Insert the processor before the renderer of structlog's configured list, once."""
    try:
        import structlog
    except ImportError:
        return False
    processors = structlog.get_config().get("processors")
    if not isinstance(processors, list):
        return False
    if not any(p is cap for p in processors):
        processors.insert(max(0, len(processors) - 1), cap)
    return True


def _install_handler(cap: TaskLogCapture) -> bool:
    """Add the handler to a root logger that already has handlers, at their lowest level."""
    root = logging.getLogger()
    others = [h for h in root.handlers if h is not cap.handler]
    if not others:
        return False
    cap.handler.setLevel(min(h.level for h in others))
    if cap.handler not in root.handlers:
        root.addHandler(cap.handler)
    return True


def ensure_installed() -> bool:
    """Make sure this process's task log records are captured; idempotent, cheap, never raises.

    Call it where a task process is known to be set up before the task executes (the retry policy's
    and the notifier's constructors run while the task's DAG file is parsed, after Airflow configured
    logging) and again later (a reconfigured logging is picked up; the records of an attempt that ran
    before are not).

    :return: whether the structlog processor is in place.
    """
    try:
        cap = capture()
        with _INSTALL_LOCK:
            installed = _install_processor(cap)
            _install_handler(cap)
        return installed
    except Exception:
        return False


def installed() -> bool:
    """Whether the processor sits in structlog's current configuration."""
    if not _CAPTURE:
        return False
    try:
        import structlog

        return any(p is _CAPTURE[0] for p in structlog.get_config().get("processors", ()))
    except Exception:
        return False


def read_tail(
    dag_id: Any, run_id: Any, task_id: Any, map_index: Any, try_number: Any, max_lines: int
) -> list[str]:
    """The redacted in-memory tail of one attempt run by this process; ``[]`` when there is none.

    :param dag_id: the DAG id.
    :param run_id: the DAG run id.
    :param task_id: the task id.
    :param map_index: the map index (-1 when not mapped).
    :param try_number: the attempt (1-based).
    :param max_lines: the most lines returned.
    """
    if not _CAPTURE or max_lines <= 0:
        return []
    try:
        key = attempt_key(dag_id, run_id, task_id, map_index, try_number)
    except (TypeError, ValueError):
        return []
    return _CAPTURE[0].tail(key, max_lines)


def _reinit_after_fork() -> None:
    global _INSTALL_LOCK
    _INSTALL_LOCK = threading.Lock()
    if _CAPTURE:
        _CAPTURE[0]._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reinit_after_fork)


__all__ = [
    "MAX_ATTEMPTS",
    "MAX_BYTES",
    "MAX_LINES",
    "MAX_LINE_BYTES",
    "MAX_RECORD_CHARS",
    "AttemptKey",
    "AttemptTail",
    "TaskLogCapture",
    "attempt_key",
    "capture",
    "ensure_installed",
    "installed",
    "read_tail",
]
