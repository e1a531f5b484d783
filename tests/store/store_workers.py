"""Builders and child-process workers of the store tests (imported by the tests and by the
``forkserver`` children, so it must stay importable without pytest)."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from qubinode_recovery_provider.models import (
    AttemptOutcome,
    Diagnosis,
    FailureEvent,
    PatternMatch,
    RecoveryAttempt,
    RootCause,
    utcnow,
)
from qubinode_recovery_provider.store import Ledger


def make_event(
    dag_id: str = "build_vm", host: str | None = "kvm-01", when: datetime | None = None, **extra: Any
) -> FailureEvent:
    return FailureEvent(
        dag_id=dag_id,
        task_id="create_vm",
        # each call is another failed attempt unless the test names one (one attempt is counted once)
        run_id=extra.pop("run_id", None) or f"manual__{uuid.uuid4().hex[:12]}",
        try_number=extra.pop("try_number", 1),
        host=host,
        occurred_at=when or utcnow(),
        exception_type="AirflowException",
        exception_text="Bash command failed. The command returned a non-zero exit code 1.",
        log_tail=["virsh: error: failed to connect to the hypervisor"],
        **extra,
    )


def make_diagnosis(
    fingerprint: str = "fp-virt-0001",
    root_cause: RootCause = RootCause.VIRTUALIZATION,
    summary: str = "libvirtd is not running",
) -> Diagnosis:
    return Diagnosis(
        root_cause=root_cause,
        summary=summary,
        confidence=0.9,
        fingerprint=fingerprint,
        retryable=True,
        matched_patterns=[
            PatternMatch(
                pattern_id="VIRT001",
                category=root_cause,
                line_number=1,
                evidence="failed to connect to the hypervisor",
            )
        ],
        recommended_actions=["systemctl start libvirtd"],
    )


def make_attempt(
    key: str,
    fingerprint: str = "fp-virt-0001",
    action: str = "restart_service",
    host: str | None = "kvm-01",
    dry_run: bool = False,
    started_at: datetime | None = None,
) -> RecoveryAttempt:
    return RecoveryAttempt(
        incident_fingerprint=fingerprint,
        idempotency_key=key,
        action=action,
        action_args={"unit": "libvirtd.service"},
        dry_run=dry_run,
        host=host,
        started_at=started_at or utcnow(),
    )


# --- child processes -----------------------------------------------------------------------------

#: Imported once in the fork server, so that each child starts in milliseconds. (The fork server does
#: not get the test directory on its ``sys.path``, so this module itself is imported by each child.)
FORKSERVER_PRELOAD = [
    "qubinode_recovery_provider.store",
    "alembic.command",
    "psycopg",
    "sqlalchemy.dialects.postgresql.psycopg",
    "sqlalchemy.dialects.sqlite.pysqlite",
]


def forkserver_context() -> Any:
    """The ``forkserver`` multiprocessing context: clean children (no inherited engines, pools or
    locks), started fast."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(FORKSERVER_PRELOAD)
    return ctx


def record_same_failure(url: str, spool_dir: str, start: Any, index: int, results: Any) -> None:
    """One of twenty processes recording the same failure the moment all pass the ``start`` barrier."""
    ledger = Ledger(url, Path(spool_dir), timeout=30, auto_flush_interval=0)
    event = make_event(dag_id=f"dag_{index % 3}", host=f"kvm-{index % 4:02d}")
    diagnosis = make_diagnosis()
    start.wait(60)
    incident = ledger.record_failure(event, diagnosis)
    ledger.close()
    results.put((index, incident.id, incident.occurrences))


def race_for_plan(
    url: str, spool_dir: str, start: Any, executor: str, keys: list[str], actions_file: str, results: Any
) -> None:
    """An executor carrying out every step of a plan whose attempt it manages to claim; the "action"
    appends one line to ``actions_file``."""
    ledger = Ledger(url, Path(spool_dir), timeout=30, auto_flush_interval=0)
    start.wait(60)
    won = []
    for key in keys:
        if ledger.begin_attempt(make_attempt(key, host=executor)):
            fd = os.open(actions_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, f"{key} {executor}\n".encode())
            finally:
                os.close(fd)
            ledger.finish_attempt(key, AttemptOutcome.SUCCEEDED, f"run by {executor}")
            won.append(key)
    ledger.close()
    results.put((executor, won))


def write_until_stopped(
    url: str, spool_dir: str, stop: Any, progress: Any, spooled: Any, results: Any
) -> None:
    """Record a distinct failure after another until ``stop`` is set, counting writes and spooled
    writes, while the test kills and restarts the database."""
    ledger = Ledger(url, Path(spool_dir), timeout=2, auto_flush_interval=0)
    count = 0
    while not stop.is_set():
        incident = ledger.record_failure(make_event(dag_id="kill_test"), make_diagnosis(f"kill-{count:05d}"))
        count += 1
        if incident.id is None:
            with spooled.get_lock():
                spooled.value += 1
        with progress.get_lock():
            progress.value = count
        time.sleep(0.001 if incident.id is not None else 0.01)
    ledger.close()
    results.put(count)
