"""From an Airflow callback or retry-policy context to a :class:`FailureEvent` the analyzer can read.

Shared by the retry policy and the notifier (both Airflow adapters). The exception of a shell task
often says only ``exit status 1``; the real error sits in the task's output, so the event carries the
tail of what the task logged: first the bounded in-memory tail this process kept while the task ran
(:mod:`qubinode_recovery_provider.utils.task_log_capture`; the only source under ``airflow dags test``
and with remote logging), else the attempt's log file ``<base_log_folder>/dag_id=.../attempt=N.log``
when it is on this machine and complete. Everything that leaves this module is redacted: by
:func:`qubinode_recovery_provider.redaction.redact` and, inside Airflow, by Airflow's own secrets masker.

No function here raises on missing or odd context values; Airflow is imported lazily and only for its
configuration and masker.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider import config
from qubinode_recovery_provider.diagnosis.logs import attempt_log_path, read_log_tail
from qubinode_recovery_provider.files import contained
from qubinode_recovery_provider.redaction import redact, redact_lines

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis import FailureAnalyzer
    from qubinode_recovery_provider.diagnosis.plain import PlainFailureEvent
    from qubinode_recovery_provider.models import Diagnosis, FailureEvent

#: Airflow's default ``[logging] log_filename_template``; any other template is rendered with Jinja.
DEFAULT_LOG_TEMPLATE = (
    "dag_id={{ ti.dag_id }}/run_id={{ ti.run_id }}/task_id={{ ti.task_id }}/"
    "{% if ti.map_index >= 0 %}map_index={{ ti.map_index }}/{% endif %}"
    "attempt={{ try_number|default(ti.try_number) }}.log"
)
MAX_EXCEPTION_CHARS = 8000
MAX_CHAIN = 5
#: Text used when a callback runs without an exception (the DAG processor, for a task killed from
#: outside or one whose heartbeat was lost).
NO_EXCEPTION_TEXT = "task failed without an exception in the callback context (killed from outside?)"


@dataclass(frozen=True)
class TaskKey:
    """Which task attempt failed.

    :param dag_id: the DAG id.
    :param task_id: the task id.
    :param run_id: the DAG run id.
    :param try_number: the attempt (1-based).
    :param map_index: the map index, -1 when not mapped.
    """

    dag_id: str | None
    task_id: str | None
    run_id: str | None
    try_number: int | None
    map_index: int = -1

    @property
    def complete(self) -> bool:
        """Whether every part needed to find the attempt's log is known."""
        return bool(self.dag_id and self.task_id and self.run_id and self.try_number)


@dataclass(frozen=True)
class LogTail:
    """The lines read for a failure and where they came from (said in reasons and ledger entries).

    :param lines: the redacted lines.
    :param source: ``attempt log``, ``no attempt log`` ...
    :param path: the file read, when there was one.
    """

    lines: list[str]
    source: str
    path: str | None = None


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def task_key(context: Mapping[str, Any] | None, try_number: int | None = None) -> TaskKey:
    """Identify the failed attempt from a context (task callback, DAG callback or retry policy).

    :param context: the Airflow context; may be ``None`` or partial.
    :param try_number: the attempt, when the caller knows it better than the context (the policy).
    """
    context = context or {}
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    dag_run = context.get("dag_run")
    map_index = _int_or_none(_get(ti, "map_index"))
    return TaskKey(
        dag_id=_get(ti, "dag_id") or _get(dag, "dag_id") or _get(dag_run, "dag_id"),
        task_id=_get(ti, "task_id"),
        run_id=_get(ti, "run_id") or context.get("run_id") or _get(dag_run, "run_id"),
        try_number=try_number if try_number is not None else _int_or_none(_get(ti, "try_number")),
        map_index=map_index if map_index is not None else -1,
    )


def describe_exception(exception: BaseException | str | None) -> tuple[str | None, str]:
    """Return ``(type name, text)`` of an exception with its causes and notes, causes first.

    :param exception: the exception, a string (some callbacks pass one) or ``None``.
    """
    if exception is None:
        return None, ""
    if isinstance(exception, str):
        return None, exception[-MAX_EXCEPTION_CHARS:]
    chain: list[BaseException] = []
    current: BaseException | None = exception
    while current is not None and len(chain) < MAX_CHAIN and not any(current is seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    lines: list[str] = []
    for exc in reversed(chain[1:]):
        lines.append(f"{type(exc).__name__}: {_text_of(exc)}")
    lines.append(_text_of(exception))
    notes = getattr(exception, "__notes__", None)
    if isinstance(notes, list | tuple):
        lines.extend(_text_of(note) for note in notes[:MAX_CHAIN])
    return type(exception).__name__, "\n".join(lines)[-MAX_EXCEPTION_CHARS:]


def _text_of(value: object) -> str:
    """``str(value)`` cut to :data:`MAX_EXCEPTION_CHARS`; a value whose ``__str__`` raises or returns no
    string gives a note saying so, never an exception."""
    try:
        text = str(value)
    except Exception as exc:
        return f"<{type(value).__name__} whose text could not be read: {type(exc).__name__}>"
    if not isinstance(text, str):
        return f"<{type(value).__name__} without text>"
    return text[-MAX_EXCEPTION_CHARS:]


def _airflow_log_settings() -> tuple[str, str]:
    """``([logging] base_log_folder, log_filename_template)`` from Airflow's configuration."""
    try:
        from airflow.sdk.configuration import conf

        base = conf.get("logging", "base_log_folder", fallback="")
        template = conf.get("logging", "log_filename_template", fallback=DEFAULT_LOG_TEMPLATE)
    except Exception:
        base, template = "", DEFAULT_LOG_TEMPLATE
    if not base:
        base = os.environ.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER") or str(
            Path(os.environ.get("AIRFLOW_HOME", str(Path.home() / "airflow"))) / "logs"
        )
    return base, template or DEFAULT_LOG_TEMPLATE


def attempt_log_file(key: TaskKey) -> Path | None:
    """Where this machine's Airflow writes the attempt's log, or ``None`` when it cannot be known.

    :param key: the attempt.
    """
    if not key.complete:
        return None
    base, template = _airflow_log_settings()
    try:
        if " ".join(template.split()) == " ".join(DEFAULT_LOG_TEMPLATE.split()):
            return contained(
                Path(base),
                attempt_log_path(
                    base,
                    str(key.dag_id),
                    str(key.run_id),
                    str(key.task_id),
                    int(key.try_number or 1),
                    key.map_index,
                ),
            )
        return contained(Path(base), _render_template(template, key))
    except Exception:  # an id that cannot be a path, a template that does not render, a path that leaves
        return None  # the log folder (a run id with "../" in a custom template)


def _render_template(template: str, key: TaskKey) -> str:
    """Render a custom ``log_filename_template`` (Jinja, or Python ``{fields}``)."""
    values = {
        "dag_id": key.dag_id,
        "task_id": key.task_id,
        "run_id": key.run_id,
        "try_number": key.try_number,
        "map_index": key.map_index,
    }
    if "{{" in template or "{%" in template:
        import jinja2

        env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)  # noqa: S701
        ti = type("TI", (), values)
        return env.from_string(template).render(ti=ti, try_number=key.try_number)
    return template.format(**values)


def read_attempt_log(key: TaskKey, max_lines: int) -> LogTail:
    """Read (and redact) the tail of the attempt's log: this process's memory first, then the file.

    The in-memory tail (:mod:`qubinode_recovery_provider.utils.task_log_capture`) holds what the task
    logged while it executed in this process, the failing command's output included: the only evidence
    under ``airflow dags test``, with remote logging, or while the supervisor has not written the last
    lines to the attempt log yet. When the attempt log file already holds the last of those lines, the
    file is read instead: it has all of them plus what the task wrote to stdout and stderr.

    :param key: the attempt.
    :param max_lines: how many lines to keep.
    """
    memory = _memory_tail(key, max_lines)
    path = attempt_log_file(key)
    on_disk = path is not None and path.is_file()
    lines = mask(read_log_tail(path, max_lines)) if path is not None and on_disk else []
    if memory and not (lines and memory[-1] in lines):
        behind = "; the attempt log lacks its last line" if on_disk else ""
        return LogTail(memory, f"task log in memory ({len(memory)} lines{behind})")
    if path is None:
        return LogTail([], "no attempt log (task not identified)")
    if not on_disk:
        return LogTail([], "no attempt log on this machine", str(path))
    return LogTail(lines, f"attempt log ({len(lines)} lines)", str(path))


def _memory_tail(key: TaskKey, max_lines: int) -> list[str]:
    """The redacted lines this process captured while the attempt executed (none elsewhere).

    :param key: the attempt.
    :param max_lines: how many lines to keep.
    """
    if not key.complete or max_lines <= 0:
        return []
    try:
        from qubinode_recovery_provider.utils.task_log_capture import read_tail

        found = read_tail(key.dag_id, key.run_id, key.task_id, key.map_index, key.try_number, max_lines)
    except Exception:
        return []
    return _airflow_masked(found)  # read_tail redacted them with our rules already


def mask_text(text: str) -> str:
    """Redact one text with our rules and, inside Airflow, Airflow's secrets masker.

    :param text: any text.
    """
    text = redact(text)
    try:
        from airflow.sdk.log import redact as airflow_redact

        masked = airflow_redact(text)
        return masked if isinstance(masked, str) else text
    except Exception:
        return text


def mask(lines: list[str]) -> list[str]:
    """Redact lines (see :func:`mask_text`); a private key spanning lines is caught whole.

    :param lines: the lines.
    """
    return _airflow_masked(redact_lines(lines))


def _airflow_masked(lines: list[str]) -> list[str]:
    """``lines`` through Airflow's secrets masker (the values of its connections and variables), when
    running inside Airflow; unchanged otherwise."""
    try:
        from airflow.sdk.log import redact as airflow_redact

        return [m if isinstance(m := airflow_redact(line), str) else line for line in lines]
    except Exception:
        return lines


def _tail_has(lines: list[str], text: str) -> bool:
    """Whether the end of the log already shows the exception (Airflow logs it before callbacks)."""
    last = text.strip().splitlines()[-1] if text.strip() else ""
    return bool(last) and any(last in line for line in lines[-40:])


def failure_event(
    key: TaskKey,
    exception: BaseException | str | None,
    log: LogTail,
    *,
    missing_exception_text: str = NO_EXCEPTION_TEXT,
) -> FailureEvent:
    """Build the redacted :class:`FailureEvent` for one failed attempt.

    :param key: the attempt.
    :param exception: the exception (``None`` in the DAG processor).
    :param log: the log tail read for it.
    :param missing_exception_text: the text used when there is no exception.
    """
    from qubinode_recovery_provider.models import FailureEvent  # pydantic: not for reading a log

    return FailureEvent(**_event_fields(key, exception, log, missing_exception_text))


def plain_failure_event(
    key: TaskKey, exception: BaseException | str | None, log: LogTail
) -> PlainFailureEvent:
    """:func:`failure_event`'s event as its plain twin
    (:class:`~qubinode_recovery_provider.diagnosis.plain.PlainFailureEvent`: the same fields, no
    pydantic), for a caller that only diagnoses it (the retry policy).

    :param key: the attempt.
    :param exception: the exception.
    :param log: the log tail read for it.
    """
    from qubinode_recovery_provider.diagnosis.plain import PlainFailureEvent

    return PlainFailureEvent(**_event_fields(key, exception, log, NO_EXCEPTION_TEXT))


def _event_fields(
    key: TaskKey, exception: BaseException | str | None, log: LogTail, missing_exception_text: str
) -> dict[str, Any]:
    """The fields of the redacted event of one failed attempt (see :func:`failure_event`)."""
    exc_type, exc_text = describe_exception(exception)
    if not exc_text:
        exc_text = missing_exception_text
    exc_text = mask_text(exc_text)
    exc_text_for_event = "" if _tail_has(log.lines, exc_text) else exc_text
    return {
        "dag_id": key.dag_id,
        "task_id": key.task_id,
        "run_id": key.run_id,
        "try_number": key.try_number,
        "map_index": key.map_index,
        "host": _hostname(),
        "exception_type": exc_type if exc_text_for_event else None,
        "exception_text": exc_text_for_event,
        "log_tail": list(log.lines),
    }


def exception_summary(
    exception: BaseException | str | None, limit: int, missing_text: str = NO_EXCEPTION_TEXT
) -> str:
    """A short, redacted ``Type: message`` for humans (run conf, notes).

    :param exception: the original exception.
    :param limit: the most characters returned.
    :param missing_text: the text used when there is no exception.
    """
    exc_type, text = describe_exception(exception)
    text = mask_text(text.strip().splitlines()[-1] if text.strip() else missing_text)
    summary = f"{exc_type}: {text}" if exc_type else text
    return summary[:limit]


def unanalysed_diagnosis(event: FailureEvent, reason: str) -> Diagnosis:
    """An ``unknown`` diagnosis made without reading the text (when the analysis failed or ran out of
    time): the failure is still recorded, with its raw (redacted) text, and grouped by task and exception
    type.

    :param event: the failure.
    :param reason: why it was not analysed (in the summary).
    """
    from qubinode_recovery_provider.diagnosis.fingerprint import fingerprint
    from qubinode_recovery_provider.models import Diagnosis, RootCause

    who = ".".join(str(p) for p in (event.dag_id, event.task_id) if p) or "unknown task"
    template = f"unanalysed {who} {event.exception_type or 'failure'}"
    return Diagnosis(
        root_cause=RootCause.UNKNOWN,
        summary=f"Not analysed: {reason}.",
        confidence=0.0,
        retryable=None,
        fingerprint=fingerprint(RootCause.UNKNOWN.value, [], template),
        template=template,
        dag_id=event.dag_id,
        task_id=event.task_id,
        run_id=event.run_id,
    )


@cache
def _hostname() -> str | None:
    try:
        return socket.gethostname() or None
    except OSError:
        return None


def shared_analyzer() -> FailureAnalyzer:
    """The process's failure analyzer (:attr:`qubinode_recovery_provider.runtime.Runtime.analyzer`)."""
    from qubinode_recovery_provider import runtime

    return runtime.current().analyzer


def log_tail_lines(override: int | None = None) -> int:
    """How many log lines to read: ``override``, else ``[qubinode_recovery] log_tail_lines``.

    :param override: an explicit value.
    """
    if override is not None:
        return max(0, int(override))
    try:
        return max(0, config.get_int("log_tail_lines"))
    except config.ConfigError:
        return int(config.OPTIONS["log_tail_lines"].default)


__all__ = [
    "NO_EXCEPTION_TEXT",
    "LogTail",
    "TaskKey",
    "attempt_log_file",
    "describe_exception",
    "exception_summary",
    "failure_event",
    "log_tail_lines",
    "mask",
    "mask_text",
    "plain_failure_event",
    "read_attempt_log",
    "shared_analyzer",
    "task_key",
    "unanalysed_diagnosis",
]
