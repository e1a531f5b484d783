"""The in-memory task log tail: bounds, attempt isolation, redaction, threads, logging hooks, and how
``read_attempt_log`` chooses between it and the attempt log file."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import structlog
from airflow.sdk.execution_time.context import set_current_context  # imports (and sets up) Airflow

from qubinode_recovery_provider.utils import task_failure as tf
from qubinode_recovery_provider.utils import task_log_capture as tlc
from qubinode_recovery_provider.utils.task_log_capture import TaskLogCapture, attempt_key

KEY = attempt_key("dag_a", "run_1", "ssh_step", -1, 1)
CANARY = "hvs.CANARYunit0123456789abcdefXYZ"
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAE"


class Switch:
    """A key source tests turn on and off (the real one reads Airflow's current context)."""

    def __init__(self, key: tlc.AttemptKey | None = KEY) -> None:
        self.key = key

    def __call__(self) -> tlc.AttemptKey | None:
        return self.key


# --- bounds -----------------------------------------------------------------------------------------


def test_only_the_last_lines_are_kept_and_the_dropped_ones_counted() -> None:
    cap = TaskLogCapture(Switch(), max_lines=500)
    for n in range(2000):
        cap.add(KEY, f"line {n}")
    lines = cap.raw_tail(KEY)
    assert lines == [f"line {n}" for n in range(1500, 2000)]
    assert cap.stats(KEY) == {"lines": 500, "bytes": sum(len(x) for x in lines), "dropped": 1500}
    assert cap.raw_tail(KEY, 3) == ["line 1997", "line 1998", "line 1999"]


def test_a_huge_line_is_cut_to_the_line_budget_and_marked() -> None:
    cap = TaskLogCapture(Switch(), max_line_bytes=8192)
    cap.add(KEY, "Permission denied (publickey). " + "x" * 50_000_000)
    (line,) = cap.raw_tail(KEY)
    assert line.startswith("Permission denied (publickey). xxx")
    assert line.endswith(tlc.TRUNCATED)
    assert len(line.encode()) <= 8192
    assert cap.stats(KEY)["bytes"] == len(line.encode())


def test_multibyte_text_is_cut_by_bytes_into_valid_utf8() -> None:
    cap = TaskLogCapture(Switch(), max_line_bytes=100)
    cap.add(KEY, "é" * 80)  # 160 bytes
    cap.add(KEY, "é" * 50)  # exactly 100 bytes: kept whole
    cut, whole = cap.raw_tail(KEY)
    assert cut.endswith(tlc.TRUNCATED)
    assert len(cut.encode("utf-8")) <= 100
    assert whole == "é" * 50


def test_the_byte_budget_drops_the_oldest_lines() -> None:
    cap = TaskLogCapture(Switch(), max_lines=500, max_line_bytes=8192, max_bytes=64 * 1024)
    for n in range(100):
        cap.add(KEY, f"{n:04d}" + "y" * 4000)
    stats = cap.stats(KEY)
    assert stats["bytes"] <= 64 * 1024
    assert stats["lines"] == 16
    assert cap.raw_tail(KEY)[-1].startswith("0099")
    assert stats["dropped"] == 84


def test_one_record_with_a_million_lines_keeps_its_last_lines() -> None:
    cap = TaskLogCapture(Switch(), max_lines=500)
    cap.add(KEY, "\n".join(f"row {n}" for n in range(1_000_000)))
    assert cap.raw_tail(KEY) == [f"row {n}" for n in range(999_500, 1_000_000)]


# --- attempts -------------------------------------------------------------------------------------


def test_attempts_never_mix() -> None:
    cap = TaskLogCapture(Switch())
    first, second = KEY, attempt_key("dag_a", "run_1", "ssh_step", -1, 2)
    mapped = attempt_key("dag_a", "run_1", "ssh_step", 3, 1)
    cap.add(first, "try 1: Permission denied (publickey).")
    cap.add(second, "try 2: Connection timed out")
    cap.add(mapped, "map 3: No space left on device")
    assert cap.raw_tail(first) == ["try 1: Permission denied (publickey)."]
    assert cap.raw_tail(second) == ["try 2: Connection timed out"]
    assert cap.raw_tail(mapped) == ["map 3: No space left on device"]
    assert cap.raw_tail(attempt_key("dag_a", "run_2", "ssh_step", -1, 1)) == []


def test_a_process_running_many_tasks_keeps_only_the_latest_attempts() -> None:
    cap = TaskLogCapture(Switch(), max_attempts=4)
    keys = [attempt_key("dag", f"run_{n}", "t", -1, 1) for n in range(10)]
    for key in keys:
        cap.add(key, "line")
    cap.add(keys[6], "written again")  # the least recently written goes first
    cap.add(attempt_key("dag", "run_x", "t", -1, 1), "new")
    assert cap.attempts() == [keys[8], keys[9], keys[6], attempt_key("dag", "run_x", "t", -1, 1)]
    assert cap.raw_tail(keys[0]) == []


def test_records_outside_a_task_are_ignored_and_the_processor_never_raises() -> None:
    switch = Switch(None)
    cap = TaskLogCapture(switch)
    event = {"event": "scheduler heartbeat", "logger": "airflow.jobs"}
    assert cap(None, "info", event) is event
    assert cap.attempts() == []

    def broken() -> tlc.AttemptKey:
        raise RuntimeError("no context")

    boom = TaskLogCapture(broken)
    event = {"event": "hello"}
    assert boom(None, "info", event) is event


def test_the_task_runners_own_lines_are_no_evidence() -> None:
    cap = TaskLogCapture(Switch())
    cap(None, "info", {"event": "::endgroup::", "logger": "task"})
    cap(None, "info", {"event": "Task instance state updated", "logger": "airflow.api_fastapi.execution_api"})
    cap(None, "info", {"event": "Output:", "logger": "airflow.task.hooks.SubprocessHook"})
    assert cap.raw_tail(KEY) == ["Output:"]


def test_an_exception_logged_during_execute_is_kept_as_type_and_message() -> None:
    cap = TaskLogCapture(Switch())
    try:
        raise PermissionError("git@github.com: Permission denied (publickey).")
    except PermissionError as exc:
        cap(None, "error", {"event": "clone failed", "exc_info": exc})
    cap(None, "error", {"event": "json mode", "exception": [{"exc_type": "OSError", "exc_value": "boom"}]})
    assert cap.raw_tail(KEY) == [
        "clone failed",
        "PermissionError: git@github.com: Permission denied (publickey).",
        "json mode",
        "OSError: boom",
    ]


# --- redaction ------------------------------------------------------------------------------------


def test_reading_redacts_secrets_and_strips_terminal_controls() -> None:
    cap = TaskLogCapture(Switch())
    cap.add(KEY, f"export VAULT_TOKEN={CANARY}")
    cap.add(KEY, "\x1b[31mPermission denied (publickey).\x1b[0m\x07")
    cap.add(KEY, f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----")
    raw = cap.raw_tail(KEY)
    assert any(CANARY in line for line in raw)  # stored as logged ...
    read = cap.tail(KEY)
    text = "\n".join(read)
    assert CANARY not in text  # ... never read out that way
    assert KEY_BODY not in text
    assert "Permission denied (publickey)." in read
    assert "\x1b" not in text
    assert "\x07" not in text


def test_no_canary_of_the_corpus_comes_out_of_the_capture() -> None:
    from support.canaries import all_canaries, assert_no_canary, combined_text

    text = combined_text()
    per_line, one_record = TaskLogCapture(Switch()), TaskLogCapture(Switch())
    for line in text.splitlines():  # one output line per record, as BashOperator logs them
        per_line(None, "info", {"event": line, "logger": "airflow.task.hooks.SubprocessHook"})
    one_record(None, "info", {"event": text, "logger": "airflow.task.hooks.SSHHook"})
    assert any(c in "\n".join(per_line.raw_tail(KEY)) for c in all_canaries())  # they went in
    assert_no_canary("\n".join(per_line.tail(KEY)), all_canaries())
    assert_no_canary("\n".join(one_record.tail(KEY)), all_canaries())


# --- threads --------------------------------------------------------------------------------------


WRITERS, LINES_PER_WRITER, READERS = 8, 3000, 2
MAX_LINES, MAX_BYTES = 200, 4096


def _write_lines(cap: TaskLogCapture, worker: int, errors: list[BaseException]) -> None:
    """One writer thread: its numbered lines, in order."""
    try:
        for n in range(LINES_PER_WRITER):
            cap(None, "info", {"event": f"w{worker}-{n:05d}", "logger": "airflow.task"})
    except BaseException as exc:
        errors.append(exc)


def _read_until_stopped(cap: TaskLogCapture, stop: threading.Event, errors: list[BaseException]) -> None:
    """One reader thread: every tail it sees holds whole lines within the bounds."""
    try:
        while not stop.is_set():
            for line in cap.tail(KEY):
                assert line.startswith("w")
            stats = cap.stats(KEY)
            assert stats["bytes"] <= MAX_BYTES
            assert stats["lines"] <= MAX_LINES
    except BaseException as exc:
        errors.append(exc)


def _write_and_read_at_once(cap: TaskLogCapture) -> list[BaseException]:
    """Run the writers and the readers together until the writers are done; what they raised."""
    errors: list[BaseException] = []
    stop = threading.Event()
    readers = [threading.Thread(target=_read_until_stopped, args=(cap, stop, errors)) for _ in range(READERS)]
    writers = [threading.Thread(target=_write_lines, args=(cap, w, errors)) for w in range(WRITERS)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    stop.set()
    for thread in readers:
        thread.join(timeout=120)
    return errors


def test_concurrent_writers_and_readers_keep_the_tail_consistent() -> None:
    cap = TaskLogCapture(Switch(), max_lines=MAX_LINES, max_bytes=MAX_BYTES)
    errors = _write_and_read_at_once(cap)
    assert not errors, errors
    lines = cap.raw_tail(KEY)
    stats = cap.stats(KEY)
    assert stats["bytes"] == sum(len(x) for x in lines) <= MAX_BYTES
    assert stats["lines"] == len(lines)
    assert stats["lines"] + stats["dropped"] == WRITERS * LINES_PER_WRITER
    # each writer's lines stay in its own order
    for worker in range(WRITERS):
        own = [line for line in lines if line.startswith(f"w{worker}-")]
        assert own == sorted(own)


def test_a_forked_child_can_log_although_the_parent_held_the_lock(tmp_path: Path) -> None:
    cap = tlc.capture()
    out = tmp_path / "child.txt"
    cap._lock.acquire()  # another thread of the parent is inside the capture at fork time
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.setsid()
                tlc.capture().add(KEY, "child line")
                out.write_text(json.dumps(tlc.capture().raw_tail(KEY)))
            finally:
                os._exit(0)
    finally:
        cap._lock.release()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
            time.sleep(0.05)
        assert out.exists(), "the child deadlocked on the parent's lock"
        assert "child line" in json.loads(out.read_text())
    finally:
        try:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        cap.clear()


# --- the logging hooks ----------------------------------------------------------------------------


@pytest.fixture
def airflow_like_logging() -> Iterator[tuple[io.StringIO, io.StringIO]]:
    """structlog and stdlib logging shaped like Airflow's (processors + renderer, a root handler)."""
    saved = structlog.get_config()
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    struct_out, std_out = io.StringIO(), io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.JSONRenderer(sort_keys=True),
        ],
        logger_factory=structlog.WriteLoggerFactory(struct_out),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(std_out)
    handler.setLevel(logging.INFO)
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    try:
        yield struct_out, std_out
    finally:
        structlog.configure(**saved)
        root.handlers, root.level = saved_handlers, saved_level
        tlc.capture().clear()


def fake_ti(try_number: int = 1, map_index: int = -1) -> SimpleNamespace:
    return SimpleNamespace(
        dag_id="dag_a", run_id="run_1", task_id="ssh_step", map_index=map_index, try_number=try_number
    )


def test_installed_hooks_see_task_records_and_leave_the_log_unchanged(
    airflow_like_logging: tuple[io.StringIO, io.StringIO],
) -> None:
    struct_out, std_out = airflow_like_logging
    slog = structlog.get_logger("airflow.task.hooks.SubprocessHook")
    slog.info("before install")  # the logger is cached with the processor list in use now
    stdlog = logging.getLogger("paramiko.transport")

    assert tlc.ensure_installed()
    assert tlc.ensure_installed()  # idempotent
    processors = structlog.get_config()["processors"]
    assert sum(p is tlc.capture() for p in processors) == 1
    assert processors[-1].__class__.__name__ == "JSONRenderer"  # the renderer stays last
    assert logging.getLogger().handlers.count(tlc.capture().handler) == 1

    slog.info("outside any task")
    with set_current_context({"ti": fake_ti()}):  # type: ignore[typeddict-item]
        slog.info("root@10.0.0.5: Permission denied (publickey).")
        stdlog.info("Authentication (publickey) failed.")
        stdlog.debug("below the level the log shows")
    with set_current_context({"ti": fake_ti(try_number=2)}):  # type: ignore[typeddict-item]
        slog.info("second try")

    assert tlc.read_tail("dag_a", "run_1", "ssh_step", -1, 1, 50) == [
        "root@10.0.0.5: Permission denied (publickey).",
        "Authentication (publickey) failed.",
    ]
    assert tlc.read_tail("dag_a", "run_1", "ssh_step", -1, 2, 50) == ["second try"]
    # what the user's log shows did not change: every event once, as rendered before
    events = [json.loads(line)["event"] for line in struct_out.getvalue().splitlines()]
    assert events == [
        "before install",
        "outside any task",
        "root@10.0.0.5: Permission denied (publickey).",
        "second try",
    ]
    assert std_out.getvalue().splitlines() == ["Authentication (publickey) failed."]


def test_no_root_handler_no_stdlib_hook() -> None:
    root = logging.getLogger()
    saved = list(root.handlers)
    root.handlers = []
    try:
        tlc.ensure_installed()
        assert root.handlers == []  # logging.lastResort still prints warnings in such a process
    finally:
        root.handlers = saved


def test_a_reconfigured_logging_gets_the_processor_again(
    airflow_like_logging: tuple[io.StringIO, io.StringIO],
) -> None:
    assert tlc.ensure_installed()
    structlog.configure(processors=[structlog.processors.JSONRenderer()])
    assert not tlc.installed()
    assert tlc.ensure_installed()
    assert tlc.installed()


# --- read_attempt_log: memory first, the file when it has everything ----------------------------


@pytest.fixture
def logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path / "logs"))
    tlc.capture().clear()
    yield tmp_path / "logs"
    tlc.capture().clear()


def task_key(try_number: int = 1) -> tf.TaskKey:
    return tf.TaskKey("dag_a", "ssh_step", "run_1", try_number, -1)


def write_attempt_log(base: Path, events: list[str], try_number: int = 1) -> Path:
    path = base / "dag_id=dag_a" / "run_id=run_1" / "task_id=ssh_step" / f"attempt={try_number}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"event": e, "level": "info"}) + "\n" for e in events))
    return path


OUTPUT = [
    "Running command: ssh root@10.0.0.5 true",
    "Output:",
    "root@10.0.0.5: Permission denied (publickey).",
]


def test_without_an_attempt_log_the_memory_tail_is_the_evidence(logs: Path) -> None:
    for line in OUTPUT:
        tlc.capture().add(KEY, line)
    tail = tf.read_attempt_log(task_key(), 100)
    assert tail.lines == OUTPUT
    assert tail.source == "task log in memory (3 lines)"
    assert tail.path is None


def test_an_attempt_log_not_flushed_yet_loses_to_memory(logs: Path) -> None:
    write_attempt_log(logs, ["::group::Pre Execute", *OUTPUT[:2]])  # the last line is not written yet
    for line in OUTPUT:
        tlc.capture().add(KEY, line)
    tail = tf.read_attempt_log(task_key(), 100)
    assert tail.lines == OUTPUT
    assert tail.source == "task log in memory (3 lines; the attempt log lacks its last line)"


def test_a_complete_attempt_log_wins_it_also_has_stdout(logs: Path) -> None:
    path = write_attempt_log(logs, [*OUTPUT, "printed to stdout by a library", "Task failed with exception"])
    for line in OUTPUT:
        tlc.capture().add(KEY, line)
    tail = tf.read_attempt_log(task_key(), 100)
    assert tail.source == "attempt log (5 lines)"
    assert tail.path == str(path)
    assert "printed to stdout by a library" in tail.lines


def test_another_attempts_memory_is_not_used(logs: Path) -> None:
    tlc.capture().add(KEY, OUTPUT[-1])  # try 1
    tail = tf.read_attempt_log(task_key(try_number=2), 100)
    assert tail.lines == []
    assert tail.source == "no attempt log on this machine"


def test_the_memory_tail_is_redacted_on_its_way_out(logs: Path) -> None:
    tlc.capture().add(KEY, f"curl -H 'X-Vault-Token: {CANARY}' https://vault:8200/v1/secret")
    tlc.capture().add(KEY, "Error making API request. Code: 403. Errors: * permission denied")
    tail = tf.read_attempt_log(task_key(), 100)
    assert CANARY not in "\n".join(tail.lines)
    assert tail.lines[-1] == "Error making API request. Code: 403. Errors: * permission denied"
    event = tf.failure_event(task_key(), RuntimeError("Bash command failed. exit code 1"), tail)
    assert CANARY not in event.model_dump_json()
