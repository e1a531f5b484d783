"""The failure path never loses and never doubles a failure: faults of the ledger, the spool, the analysis
and the exception itself, each with a real SQLite ledger and the real spool.

"Exactly once" is checked where it matters: after every writer (the worker thread, the rescue, a spool
replay) has had its say, the ledger holds one occurrence and one diagnosis of the failed attempt.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from notify_helpers import SSH_DENIED, task_context
from support.processes import free_port

from qubinode_recovery_provider import runtime
from qubinode_recovery_provider.notifications import RecoveryNotifier
from qubinode_recovery_provider.notifications import failure_path as report_module
from qubinode_recovery_provider.store import Ledger
from qubinode_recovery_provider.utils import task_failure

#: The notifier's contract: it returns within its budget plus this.
SLACK = 0.5


@pytest.fixture(autouse=True)
def api_down(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "http", "host": "127.0.0.1", "port": free_port(), "login": "u", "password": "p"}
    monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", json.dumps(conn))


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown: a test's blocked worker thread is let go and joined (no thread outlives a test)."""
    event = threading.Event()
    yield event
    event.set()
    for thread in threading.enumerate():
        if thread.name == "qubinode-recovery-notifier":
            thread.join(10)


@pytest.fixture
def stuck_analysis(monkeypatch: pytest.MonkeyPatch, release: threading.Event) -> None:
    """The analysis blocks until ``release`` is set (at the latest at teardown), then fails."""

    def slow_analysis(self: object, event: Any, host: Any) -> Any:
        release.wait(30)
        raise RuntimeError("never reached in time")

    monkeypatch.setattr(report_module.FailureReport, "_diagnose", slow_analysis)


def ledger(tmp_path: Path) -> Ledger:
    return Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "state" / "spool")


def run_notifier(budget: float, context: dict[str, Any]) -> tuple[Any, float]:
    import time

    notifier = RecoveryNotifier(budget_seconds=budget)
    started = time.monotonic()
    notifier(context)
    elapsed = time.monotonic() - started
    assert notifier.last_outcome is not None
    return notifier.last_outcome, elapsed


def occurrences_and_diagnoses(tmp_path: Path) -> tuple[int, int]:
    """Replay the spool, then count every occurrence and every stored diagnosis in the ledger."""
    replay = ledger(tmp_path)
    replay.flush_spool()
    incidents = replay.list_incidents(limit=100)
    diagnoses = sum(len(replay.incident_detail(i.fingerprint)["diagnoses"]) for i in incidents)
    return sum(i.occurrences for i in incidents), diagnoses


def test_analysis_that_overruns_is_rescued_and_recorded_once(
    tmp_path: Path, release: threading.Event, stuck_analysis: None
) -> None:
    outcome, elapsed = run_notifier(1.0, task_context(PermissionError(SSH_DENIED)))
    assert elapsed <= 1.0 + SLACK
    assert outcome.timed_out is True
    assert outcome.record_status == "spooled"
    assert outcome.root_cause == "unknown"
    release.set()  # the worker wakes up after the rescue: it must not write a second time
    assert occurrences_and_diagnoses(tmp_path) == (1, 1)
    incident = ledger(tmp_path).get_incident(outcome.fingerprint)
    assert incident is not None
    assert "Not analysed" in incident.summary


def test_worker_and_rescue_both_writing_converge_on_one_occurrence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, release: threading.Event
) -> None:
    """The worker is inside its ledger write when time runs out: the rescue spools the same attempt, the
    worker's write lands later, and the spool replay finds it already there."""
    real = Ledger.record_occurrence
    entered = threading.Event()

    def slow_write(self: Ledger, event: Any, diagnosis: Any) -> Any:
        entered.set()
        release.wait(30)
        return real(self, event, diagnosis)

    monkeypatch.setattr(Ledger, "record_occurrence", slow_write)
    outcome, elapsed = run_notifier(1.0, task_context(PermissionError(SSH_DENIED)))
    assert entered.is_set()
    assert elapsed <= 1.0 + SLACK
    assert outcome.record_status == "spooled"
    release.set()
    for thread in threading.enumerate():
        if thread.name == "qubinode-recovery-notifier":
            thread.join(10)
    monkeypatch.setattr(Ledger, "record_occurrence", real)
    assert occurrences_and_diagnoses(tmp_path) == (1, 1)


def test_the_same_attempt_reported_twice_counts_once_and_the_next_try_counts_again(tmp_path: Path) -> None:
    first, _ = run_notifier(5.0, task_context(PermissionError(SSH_DENIED), try_number=1))
    again, _ = run_notifier(5.0, task_context(PermissionError(SSH_DENIED), try_number=1))
    second_try, _ = run_notifier(5.0, task_context(PermissionError(SSH_DENIED), try_number=2))
    assert (first.record_status, again.record_status, second_try.record_status) == (
        "written",
        "duplicate",
        "written",
    )
    assert second_try.occurrences == 2
    assert occurrences_and_diagnoses(tmp_path) == (2, 2)


def test_a_corrupt_ledger_file_spools_the_incident(tmp_path: Path) -> None:
    (tmp_path / "ledger.db").write_bytes(b"this is not a database\n" * 200)
    outcome, _ = run_notifier(3.0, task_context(PermissionError(SSH_DENIED)))
    assert outcome.record_status == "spooled"
    assert outcome.incident_spooled is True
    assert outcome.incident_recorded is False
    (tmp_path / "ledger.db").unlink()  # the operator restores the database; the spool replays
    assert occurrences_and_diagnoses(tmp_path) == (1, 1)


def test_a_spool_that_cannot_be_written_is_reported_lost_not_spooled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither the ledger (a corrupt file) nor the spool (its folder is a file) can take the write: the
    outcome says so, and the event is logged whole as the last record of it."""
    (tmp_path / "ledger.db").write_bytes(b"garbage" * 100)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the state folder should be")
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__STATE_DIR", str(blocked))
    outcome, _ = run_notifier(3.0, task_context(PermissionError(SSH_DENIED)))
    assert outcome.record_status == "lost"
    assert outcome.incident_spooled is False
    assert any("LOST" in error for error in outcome.errors)
    assert "Permission denied (publickey)" in caplog.text


class Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no text for you")


class NotAString(Exception):
    def __str__(self) -> Any:
        return 42


@pytest.mark.parametrize("exception", [Unprintable("x"), NotAString("y")], ids=["raises", "not-a-string"])
def test_an_exception_whose_text_cannot_be_read_is_still_recorded(
    tmp_path: Path, exception: Exception
) -> None:
    outcome, _ = run_notifier(3.0, task_context(exception))
    assert outcome.record_status == "written"
    assert occurrences_and_diagnoses(tmp_path) == (1, 1)


def test_an_analysis_error_still_records_the_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(task_failure.shared_analyzer(), "analyze", broken)
    outcome, _ = run_notifier(3.0, task_context(PermissionError(SSH_DENIED)))
    assert outcome.record_status == "written"
    assert outcome.root_cause == "unknown"
    assert any("analysis failed: RecursionError" in error for error in outcome.errors)
    assert occurrences_and_diagnoses(tmp_path) == (1, 1)


@pytest.fixture
def missing_pattern_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A configured pattern folder that does not exist, with a fresh shared analyzer that reads it; after
    the test the analyzer of the default configuration is put back (it stayed in the process before,
    and the tests that followed ran with a library that had warned)."""
    folder = tmp_path / "no-such-folder"
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__PATTERN_DIRS", str(folder))
    runtime.reset()  # a fresh analyzer reads the configuration
    yield folder
    monkeypatch.delenv("AIRFLOW__QUBINODE_RECOVERY__PATTERN_DIRS")
    runtime.reset()
    task_failure.shared_analyzer().analyze("warm-up")


def test_a_missing_pattern_dir_does_not_lose_the_incident(missing_pattern_dir: Path, tmp_path: Path) -> None:
    outcome, _ = run_notifier(5.0, task_context(PermissionError(SSH_DENIED)))
    assert outcome.record_status == "written"
    assert outcome.root_cause == "credential"
    assert any("pattern library: 1 warning(s)" in e and "no-such-folder" in e for e in outcome.errors)
    assert occurrences_and_diagnoses(tmp_path) == (1, 1)


def test_files_are_private_and_stay_private_after_a_partial_replay(tmp_path: Path) -> None:
    (tmp_path / "ledger.db").write_bytes(b"garbage" * 100)
    for try_number in (1, 2, 3):
        run_notifier(3.0, task_context(PermissionError(SSH_DENIED), try_number=try_number))
    state = tmp_path / "state"
    spool_files = list((state / "spool").glob("*.jsonl"))
    assert spool_files
    (tmp_path / "ledger.db").unlink()
    ledger(tmp_path).flush_spool(limit=1)  # a partial replay rewrites the spool file
    modes = {p: p.stat().st_mode & 0o777 for p in state.rglob("*")}
    modes.update({p: p.stat().st_mode & 0o777 for p in tmp_path.glob("ledger.db*")})
    assert modes
    for path, mode in modes.items():
        expected = 0o700 if path.is_dir() else 0o600
        assert mode == expected, f"{path} is {oct(mode)}"


def test_a_run_id_that_climbs_out_of_the_log_folder_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "outside.log"
    secret.write_text("CANARY-outside-the-log-folder root password is hunter2\n")
    monkeypatch.setenv("AIRFLOW__LOGGING__LOG_FILENAME_TEMPLATE", "{{ ti.dag_id }}/{{ ti.run_id }}.log")
    key = task_failure.TaskKey("build_vm", "create_vm", "../../outside", 1)
    assert task_failure.attempt_log_file(key) is None
    outcome, _ = run_notifier(3.0, task_context(PermissionError(SSH_DENIED), run_id="../../outside"))
    assert outcome.record_status == "written"
    replay = ledger(tmp_path)
    detail = replay.incident_detail(outcome.fingerprint)
    assert "CANARY-outside" not in json.dumps(detail)


def _record_with_file_size_limit(ledger_url: str, state_dir: str, limit: int, results: Any) -> None:
    """In a child process whose files cannot grow past ``limit`` bytes: the disk is "full"."""
    import os
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG instead
    os.environ["AIRFLOW__QUBINODE_RECOVERY__STATE_DIR"] = state_dir
    os.environ["AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL"] = ledger_url
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    outcome, _ = run_notifier(3.0, task_context(PermissionError(SSH_DENIED)))
    results.put(outcome.record_status)


def test_a_full_disk_spools_the_incident(tmp_path: Path) -> None:
    import multiprocessing

    ledger(tmp_path).migrate()
    (tmp_path / "state" / "spool").mkdir(parents=True, exist_ok=True)
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    args = (f"sqlite:///{tmp_path / 'ledger.db'}", str(tmp_path / "state"), 4096, results)
    child = ctx.Process(target=_record_with_file_size_limit, args=args)
    child.start()
    try:
        status = results.get(timeout=60)
    finally:
        child.join(30)
        if child.is_alive():
            child.kill()
            child.join(5)
    assert status == "spooled"
    assert occurrences_and_diagnoses(tmp_path) == (1, 1)


def test_a_read_only_ledger_spools_the_incident(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger(tmp_path).migrate()
    read_only = f"sqlite:///file:{tmp_path / 'ledger.db'}?mode=ro&uri=true"
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL", read_only)
    outcome, _ = run_notifier(3.0, task_context(PermissionError(SSH_DENIED)))
    assert outcome.record_status == "spooled"
    assert occurrences_and_diagnoses(tmp_path) == (1, 1)


def test_a_postgresql_that_refuses_connections_spools_the_incident(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = f"postgresql+psycopg://qubinode:secret@127.0.0.1:{free_port()}/ledger"
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL", refused)
    outcome, elapsed = run_notifier(2.0, task_context(PermissionError(SSH_DENIED)))
    assert elapsed <= 2.0 + SLACK
    assert outcome.record_status == "spooled"
    assert occurrences_and_diagnoses(tmp_path) == (1, 1)


def test_a_signal_handler_that_raises_while_the_notifier_waits_does_not_lose_the_failure(
    tmp_path: Path, release: threading.Event, stuck_analysis: None
) -> None:
    """What Airflow's supervisor does after ``task_success_overtime``: SIGTERM, whose handler in the task
    runs the operator's ``on_kill`` -- BashOperator's raises ProcessLookupError when its command is
    gone. The exception surfaces in the thread that waits for the worker; the failure is spooled."""
    import signal

    def on_kill(signum: int, frame: Any) -> None:
        raise ProcessLookupError(3, "No such process")

    previous = signal.signal(signal.SIGALRM, on_kill)
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    try:
        outcome, elapsed = run_notifier(10.0, task_context(PermissionError(SSH_DENIED)))
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert elapsed < 5.0
    assert outcome.record_status == "spooled"
    assert any("interrupted at stage" in e and "ProcessLookupError" in e for e in outcome.errors)
    release.set()
    assert occurrences_and_diagnoses(tmp_path) == (1, 1)


def test_the_budget_stays_inside_airflows_task_success_overtime(monkeypatch: pytest.MonkeyPatch) -> None:
    """Airflow 3 stops the task process ``task_success_overtime`` after the failed state was reported,
    which is before the failure callback runs: the notifier keeps a quarter of it in hand."""
    from airflow.configuration import conf

    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__NOTIFIER_BUDGET_SECONDS", "60")
    assert conf.getfloat("core", "task_success_overtime") == 20.0
    assert RecoveryNotifier().budget() == 15.0
    assert RecoveryNotifier(budget_seconds=3).budget() == 3.0
    monkeypatch.setenv("AIRFLOW__CORE__TASK_SUCCESS_OVERTIME", "8")
    assert RecoveryNotifier().budget() == 6.0
    assert RecoveryNotifier(budget_seconds=30).budget() == 6.0


def test_a_rescued_failure_that_names_no_run_is_spooled_and_replayed(
    tmp_path: Path, release: threading.Event, stuck_analysis: None
) -> None:
    """No run id, so no idempotency key: the rescue still spools it (under an id of its own)."""

    context = task_context(PermissionError(SSH_DENIED), run_id=None)
    context["run_id"] = None
    outcome, _ = run_notifier(1.0, context)
    assert outcome.record_status == "spooled"
    release.set()
    assert occurrences_and_diagnoses(tmp_path)[0] == 1
