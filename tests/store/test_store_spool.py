"""A locked or unreachable ledger never raises into the caller: writes are spooled and replayed,
exactly once, later."""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from store_workers import forkserver_context, make_attempt, make_diagnosis, make_event, write_until_stopped

from qubinode_recovery_provider.models import (
    AttemptOutcome,
    RecoveryPlan,
    RootCause,
    ShadowError,
    ShadowErrorType,
)
from qubinode_recovery_provider.store import Ledger, LedgerUnavailable
from qubinode_recovery_provider.store import schema as t
from qubinode_recovery_provider.store.spool import Spool, SpoolEvent


def _count(ledger: Ledger, table: sa.Table) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(table)))


def _unreachable_url() -> str:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/nowhere"


def test_locked_sqlite_spools_then_flush_writes_once(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    spool = tmp_path / "spool"
    Ledger(f"sqlite:///{db}", spool).migrate()
    ledger = Ledger(f"sqlite:///{db}", spool, timeout=0.2, auto_flush_interval=0)
    ledger.migrate()
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        started = time.monotonic()
        incident = ledger.record_failure(make_event(), make_diagnosis())
        assert time.monotonic() - started < 3
        assert incident.id is None
        assert incident.occurrences == 1
        assert incident.fingerprint == "fp-virt-0001"
        ledger.record_checkpoint("build_vm", "create_vm", "r1", {"step": 3})
        assert ledger.spool_status()["pending_events"] == 2
        with pytest.raises(LedgerUnavailable):
            ledger.begin_attempt(make_attempt("k1"))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert ledger.flush_spool() == 2
    assert ledger.get_incident("fp-virt-0001").occurrences == 1
    assert ledger.latest_checkpoint("build_vm", "create_vm") == {"step": 3}
    assert ledger.spool_status()["pending_events"] == 0
    assert ledger.flush_spool() == 0


@pytest.mark.integration
def test_unreachable_postgres_spools_every_write_kind(pg_url: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    down = Ledger(_unreachable_url(), spool, timeout=1, auto_flush_interval=0)
    assert down.record_failure(make_event(), make_diagnosis()).id is None
    down.record_plan(RecoveryPlan(fingerprint="fp-virt-0001", root_cause=RootCause.VIRTUALIZATION))
    down.finish_attempt("k1", AttemptOutcome.FAILED, "late outcome")
    down.set_incident_state("fp-virt-0001", "recovering")
    down.record_checkpoint("build_vm", "create_vm", "r1", {"ok": True})
    assert down.enqueue_escalation("fp-virt-0001", "title", "body", ["x"]) == 0
    finding = ShadowError(type=ShadowErrorType.LINEAGE_MISSING, dag_id="d", run_id="r", confidence=0.5)
    assert down.record_shadow_error(finding) == (0, True)
    for read in (down.list_incidents, lambda: down.get_incident("x"), down.pending_escalations):
        with pytest.raises(LedgerUnavailable):
            read()
    assert down.spool_status()["pending_events"] == 7

    up = Ledger(pg_url, spool, auto_flush_interval=0)
    assert up.flush_spool() == 7
    incident = up.get_incident("fp-virt-0001")
    assert (incident.occurrences, incident.state.value) == (1, "recovering")
    assert len(up.pending_escalations()) == 1
    assert _count(up, t.plans) == 1
    assert _count(up, t.shadow_errors) == 1
    assert up.latest_checkpoint("build_vm", "create_vm") == {"ok": True}
    assert list(spool.glob("*.jsonl")) == []
    up.close()


def test_replaying_an_event_twice_applies_it_once(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    down = Ledger(_unreachable_url(), spool, timeout=1, auto_flush_interval=0)
    down.record_failure(make_event(), make_diagnosis())
    (spool_file,) = spool.glob("*.jsonl")
    line = spool_file.read_text()
    ledger = Ledger(url, spool, auto_flush_interval=0)
    assert ledger.flush_spool() == 1
    # a crash between commit and unlink leaves the same event to replay again
    (spool / "other-1.jsonl").write_text(line)
    assert ledger.flush_spool() == 1
    assert ledger.get_incident("fp-virt-0001").occurrences == 1
    assert _count(ledger, t.diagnoses) == 1


def test_corrupted_spool_lines_are_counted_and_kept(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    down = Ledger(_unreachable_url(), spool_dir, timeout=1, auto_flush_interval=0)
    down.record_failure(make_event(), make_diagnosis("fp-good-1"))
    (path,) = spool_dir.glob("*.jsonl")
    bad_payload = SpoolEvent(op="record_failure", payload={"event": {}, "diagnosis": {"confidence": 7}})
    unknown_op = SpoolEvent(op="drop_everything", payload={})
    garbage = [
        "this is not json\n",
        '{"id": "x", "op": "record_plan"}\n',
        "[1, 2]\n",
        bad_payload.to_line(),
        unknown_op.to_line(),
        '{"id": "deep", "op": "record_failure", "payload": ' + "[" * 100_000 + "]" * 100_000 + "}\n",
    ]
    with path.open("a") as fh:
        fh.writelines(garbage)
        fh.write('{"v":1,"id":"torn","op":"record_fail')  # a writer died mid-line
    down.record_failure(make_event(), make_diagnosis("fp-good-2"))  # appended after the torn line

    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", spool_dir, auto_flush_interval=0)
    assert ledger.flush_spool() == 2
    assert ledger.last_flush.rejected == 7
    assert {i.fingerprint for i in ledger.list_incidents()} == {"fp-good-1", "fp-good-2"}
    rejected = path.with_name(path.name + ".rejected").read_text().splitlines(keepends=True)
    assert rejected[:6] == garbage
    assert rejected[6].startswith('{"v":1,"id":"torn"')
    assert not path.exists()
    assert ledger.spool_status() == {"directory": str(spool_dir), "pending_events": 0, "rejected_events": 7}


def test_flush_stops_when_the_database_goes_away_and_keeps_the_rest(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    down = Ledger(_unreachable_url(), spool_dir, timeout=1, auto_flush_interval=0)
    for n in range(3):
        down.record_failure(make_event(), make_diagnosis(f"fp-{n}"))
    assert down.flush_spool() == 0
    assert down.last_flush.stopped
    assert down.spool_status()["pending_events"] == 3
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", spool_dir, auto_flush_interval=0)
    assert ledger.flush_spool(limit=2) == 2
    assert ledger.spool_status()["pending_events"] == 1
    assert ledger.flush_spool() == 1
    assert len(ledger.list_incidents()) == 3


def test_next_successful_write_replays_the_spool(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    Ledger(_unreachable_url(), spool_dir, timeout=1).record_failure(make_event(), make_diagnosis("fp-early"))
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", spool_dir)  # automatic replay on
    ledger.record_failure(make_event(), make_diagnosis("fp-later"))
    assert {i.fingerprint for i in ledger.list_incidents()} == {"fp-early", "fp-later"}
    assert ledger.spool_status()["pending_events"] == 0


def test_concurrent_flushes_apply_each_event_once(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    down = Ledger(_unreachable_url(), spool_dir, timeout=1, auto_flush_interval=0)
    for n in range(40):
        down.record_failure(make_event(), make_diagnosis(f"fp-{n % 5}"))
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger(url, spool_dir).migrate()
    flushed: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: flushed.append(Ledger(url, spool_dir, auto_flush_interval=0).flush_spool())
        )
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ledger = Ledger(url, spool_dir)
    assert sorted(flushed) == [0, 0, 40]
    assert sum(i.occurrences for i in ledger.list_incidents()) == 40


def test_spool_append_reopens_a_file_replaced_during_the_wait(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    spool.append(SpoolEvent(op="record_plan", payload={}))
    seen: list[str] = []

    def apply(event: SpoolEvent) -> None:
        seen.append(event.op)
        if len(seen) == 1:  # an append from another thread while the replay holds the lock
            writer = threading.Thread(target=spool.append, args=(SpoolEvent(op="late", payload={}),))
            writer.start()
            _wait_for(lambda: _waits_for_its_flock(spool.path), "the append waiting for the replay's lock")
            apply.writer = writer  # type: ignore[attr-defined]

    spool.replay(apply)
    apply.writer.join()  # type: ignore[attr-defined]
    lines = [json.loads(line)["op"] for line in spool.path.read_text().splitlines()]
    assert seen == ["record_plan"]
    assert lines == ["late"]


def _waits_for_its_flock(path: Path) -> bool:
    """Whether a process or thread is blocked on a ``flock`` of ``path`` (``->`` in /proc/locks)."""
    inode = path.stat().st_ino
    with open("/proc/locks") as locks:  # "1: -> FLOCK  ADVISORY  WRITE <pid> <maj:min:inode> 0 EOF"
        return any(line.split()[1] == "->" and line.split()[-3].endswith(f":{inode}") for line in locks)


def _wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.mark.integration
def test_killing_postgres_mid_write_loses_nothing(make_pg_server: Callable[[], Any], tmp_path: Path) -> None:
    server = make_pg_server()
    url = server.url()
    spool_dir = tmp_path / "spool"
    Ledger(url, spool_dir).migrate()
    ctx = forkserver_context()
    stop, results = ctx.Event(), ctx.Queue()
    progress, spooled = ctx.Value("i", 0), ctx.Value("i", 0)
    child = ctx.Process(
        target=write_until_stopped, args=(url, str(spool_dir), stop, progress, spooled, results)
    )
    child.start()
    try:
        for cycle in (1, 2):  # crash twice: the second time after writes resumed on the restarted server
            direct = 40 * cycle
            _wait_for(lambda: progress.value - spooled.value >= direct, "writes before the crash")  # noqa: B023
            server.stop("immediate")  # kill -9 of the server while the child writes
            before = spooled.value
            _wait_for(lambda: spooled.value >= before + 20, "spooled writes while the server is down")  # noqa: B023
            server.start()
    finally:
        stop.set()
    total = results.get(timeout=60)
    child.join(30)
    assert child.exitcode == 0

    ledger = Ledger(url, spool_dir, auto_flush_interval=0)
    assert spooled.value >= 40
    assert ledger.flush_spool() == spooled.value
    print(f"{total} writes, {spooled.value} spooled")
    assert ledger.last_flush.rejected == 0
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(t.incidents.c.fingerprint, t.incidents.c.occurrences)).all()
        diagnoses = conn.scalar(sa.select(sa.func.count()).select_from(t.diagnoses))
    assert sorted(fp for fp, _ in rows) == [f"kill-{n:05d}" for n in range(total)]
    assert {occurrences for _, occurrences in rows} == {1}
    assert diagnoses == total
    assert ledger.spool_status()["pending_events"] == 0
    ledger.close()


def test_sqlite_file_that_cannot_be_created_spools(tmp_path: Path) -> None:
    (tmp_path / "not_a_dir").write_text("")
    ledger = Ledger(f"sqlite:///{tmp_path / 'not_a_dir' / 'ledger.db'}", tmp_path / "spool", timeout=0.2)
    assert ledger.record_failure(make_event(), make_diagnosis()).id is None
    assert ledger.spool_status()["pending_events"] == 1
    with pytest.raises(LedgerUnavailable):
        ledger.begin_attempt(make_attempt("k"))
