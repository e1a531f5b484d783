"""Reading the OpenLineage file transport: real events, malformed lines, rotation, one-event files."""

from __future__ import annotations

import gzip
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from shadow_site import REAL_EVENTS

from qubinode_recovery_provider.shadow import FileLineageSource, olevents
from qubinode_recovery_provider.shadow import lineage_file as lf
from qubinode_recovery_provider.shadow.lineage import LineageIndex

DB_RUN = ("example_kcli_deploy_db", "manual__2026-11-28T06:55:07.194990+00:00")
SNAPSHOT_RUN = ("example_kcli_snapshot_lab", "manual__2026-11-28T06:55:31.464193+00:00")


def _summary(index: LineageIndex) -> dict[Any, Any]:
    return {
        key: (
            run.dag_terminal,
            run.tasks_state,
            {k: (sorted(t.types), t.terminal, sorted(t.outputs), t.events) for k, t in run.tasks.items()},
        )
        for key, run in index.runs.items()
    }


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture
def real_lines() -> list[str]:
    return [line for line in REAL_EVENTS.read_text().splitlines() if line.strip()]


def test_every_real_event_takes_the_typed_fast_path(real_lines: list[str]) -> None:
    if olevents.msgspec is None:  # pragma: no cover
        pytest.fail("msgspec (an Airflow dependency) is expected in the test environment")
    for line in real_lines:
        olevents._DECODER.decode(line.encode())  # raises if the shape needed the slow path


def test_real_events_give_outlets_terminal_states_and_the_dag_run_facets(real_lines: list[str]) -> None:
    index = FileLineageSource(REAL_EVENTS).read(None)
    assert index.report.available
    assert index.report.items == len(real_lines)
    db = index.get(*DB_RUN)
    assert db is not None
    assert db.dag_terminal is not None
    assert db.dag_terminal[1] == "COMPLETE"
    create = db.tasks[("create_vm", -1)]
    assert create.types == {"START", "COMPLETE"}
    assert create.terminal_type == "COMPLETE"
    (declared,) = create.outputs.values()
    assert (declared.host, declared.name, declared.expected_state, declared.task_id) == (
        "lab",
        "db1",
        "running",
        "create_vm",
    )
    snapshot = index.get(*SNAPSHOT_RUN)
    assert snapshot is not None
    assert snapshot.tasks[("snapshot_vms", -1)].terminal_type == "FAIL"
    assert snapshot.tasks_state == {"report": "success", "snapshot_vms": "failed"}


def test_malformed_lines_are_counted_and_named_by_line_number(tmp_path: Path, real_lines: list[str]) -> None:
    lines = [
        *real_lines[:3],
        "not json at all",
        *real_lines[3:6],
        '{"eventType": "COMPLETE", "run": 5}',
        "[1, 2]",
    ]
    lines += [*real_lines[6:], real_lines[0][:100]]  # a torn last line, as after a crash
    path = _write(tmp_path / "events.jsonl", lines)
    index = FileLineageSource(path).read(None)
    assert index.report.available
    assert index.report.skipped == 4
    warnings = "\n".join(index.report.all_warnings())
    for number in (4, 8, 9, len(lines)):
        assert f"{path}:{number}: not an OpenLineage event" in warnings
    assert "4 malformed lines skipped" in warnings
    assert _summary(index) == _summary(FileLineageSource(REAL_EVENTS).read(None))


def test_a_missing_file_makes_the_source_unavailable_not_an_error(tmp_path: Path) -> None:
    index = FileLineageSource(tmp_path / "nowhere.jsonl").read(None)
    assert not index.report.available
    assert "does not exist" in index.report.warnings[0]


def test_rotated_and_compressed_files_read_like_one_file(tmp_path: Path, real_lines: list[str]) -> None:
    base = tmp_path / "events.jsonl"
    with gzip.open(tmp_path / "events.jsonl.2.gz", "wt") as handle:
        handle.write("".join(line + "\n" for line in real_lines[:7]))
    _write(tmp_path / "events.jsonl.1", real_lines[7:14])
    _write(base, real_lines[14:])
    _write(tmp_path / "events.jsonl.bak-notes", ["unrelated"])
    source = FileLineageSource(base)
    assert sorted(p.name for p in source.files()) == ["events.jsonl", "events.jsonl.1", "events.jsonl.2.gz"]
    assert _summary(source.read(None)) == _summary(FileLineageSource(REAL_EVENTS).read(None))


def test_one_event_files_of_the_transport_without_append(
    tmp_path: Path, real_events: list[dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real OpenLineage client's file transport with ``append: false``: one file per event,
    pretty printed in debug mode. (Its serialiser is replaced so that it writes our recorded dicts.)"""
    import time

    from openlineage.client.transport import file as transport_file

    class _DictSerde:
        @staticmethod
        def to_json(event: dict[str, Any], **kwargs: Any) -> str:
            return json.dumps(event, **kwargs)

    monkeypatch.setattr(transport_file, "Serde", _DictSerde)
    base = tmp_path / "ol" / "events"
    base.parent.mkdir()
    plain = transport_file.FileTransport(transport_file.FileConfig(log_file_path=str(base), append=False))
    pretty = transport_file.FileTransport(
        transport_file.FileConfig(log_file_path=str(base), append=False, debug_mode=True)
    )
    for number, event in enumerate(real_events):
        (pretty if number % 2 else plain).emit(event)  # type: ignore[arg-type]
        time.sleep(0.002)  # distinct file names (the transport stamps microseconds)
    assert len(list(base.parent.iterdir())) == len(real_events)
    expected = _summary(FileLineageSource(REAL_EVENTS).read(None))
    assert _summary(FileLineageSource(base).read(None)) == expected
    assert _summary(FileLineageSource(base.parent).read(None)) == expected


def test_a_glob_pattern_selects_files(tmp_path: Path, real_lines: list[str]) -> None:
    _write(tmp_path / "a.jsonl", real_lines[:10])
    _write(tmp_path / "b.jsonl", real_lines[10:])
    index = FileLineageSource(str(tmp_path / "*.jsonl")).read(None)
    assert index.report.items == len(real_lines)


def test_only_wanted_runs_are_kept(real_lines: list[str]) -> None:
    index = FileLineageSource(REAL_EVENTS).read({DB_RUN})
    assert list(index.runs) == [DB_RUN]
    assert index.other_runs == len(real_lines) - index.runs[DB_RUN].events


def test_task_events_without_the_airflow_facet_are_tied_through_the_parent_run(
    tmp_path: Path, real_events: list[dict]
) -> None:
    stripped = []
    for event in real_events:
        event = json.loads(json.dumps(event))
        event["run"]["facets"].pop("airflow", None)
        stripped.append(json.dumps(event))
    index = FileLineageSource(_write(tmp_path / "e.jsonl", stripped)).read(None)
    db = index.get(*DB_RUN)
    assert db is not None
    assert ("create_vm", -1) in db.tasks
    assert db.tasks[("create_vm", -1)].terminal_type == "COMPLETE"
    assert index.unattributed == 0


def test_parallel_workers_give_the_same_index_and_line_numbers(
    tmp_path: Path, real_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [*real_lines, "garbage", *real_lines, "more garbage", *real_lines]
    path = _write(tmp_path / "events.jsonl", lines)
    monkeypatch.setattr(lf, "PARALLEL_MIN_BYTES", 1)
    sequential = FileLineageSource(path).read(None)
    parallel = FileLineageSource(path, workers=3).read(None)
    assert _summary(parallel) == _summary(sequential)
    assert parallel.report.warnings == sequential.report.warnings
    assert f"{path}:{len(real_lines) + 1}:" in parallel.report.warnings[0]
    assert f"{path}:{2 * len(real_lines) + 2}:" in parallel.report.warnings[1]


@pytest.mark.parametrize("stripped", [False, True], ids=["airflow facet", "parent run only"])
def test_workers_started_before_the_runs_are_known_keep_only_the_wanted_runs(
    tmp_path: Path, real_events: list[dict], monkeypatch: pytest.MonkeyPatch, stripped: bool
) -> None:
    """An early start (the scan forks the workers, then reads the runs) gives the index of a read that
    knew the wanted runs from the start, counts included."""
    lines = []
    for event in real_events * 3:
        event = json.loads(json.dumps(event))
        if stripped:
            event["run"]["facets"].pop("airflow", None)
        lines.append(json.dumps(event))
    path = _write(tmp_path / "events.jsonl", lines)
    monkeypatch.setattr(lf, "PARALLEL_MIN_BYTES", 1)
    known = FileLineageSource(path).read({DB_RUN})
    pending = FileLineageSource(path, workers=3).start(None, early=True)
    assert pending.forked  # the workers run already
    pending.narrow({DB_RUN})
    early = pending.result()
    assert list(early.runs) == [DB_RUN]
    assert _summary(early) == _summary(known)
    assert (early.other_runs, early.unattributed, early.report.items) == (
        known.other_runs,
        known.unattributed,
        known.report.items,
    )


def test_an_early_read_whose_runs_cannot_be_read_stops_its_workers(
    tmp_path: Path, real_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from qubinode_recovery_provider.shadow.runs import RunsSourceError
    from qubinode_recovery_provider.shadow.scan import run_scan

    class Broken:
        name = "runs"

        def fetch(self, since: Any = None, until: Any = None) -> list[Any]:
            raise RunsSourceError("the API is down")

    forked: list[Any] = []
    real_start = lf._Forked.start

    def spy(*args: Any, **kwargs: Any) -> Any:
        forked.append(real_start(*args, **kwargs))
        forked.extend(process for process, _ in forked[-1].children)
        return forked[0]

    monkeypatch.setattr(lf, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(lf._Forked, "start", spy)
    path = _write(tmp_path / "events.jsonl", real_lines * 3)
    with pytest.raises(RunsSourceError):
        run_scan(Broken(), FileLineageSource(path, workers=3))  # type: ignore[arg-type]
    processes = forked[1:]
    assert len(processes) == 2  # the workers had started
    assert not any(p.is_alive() for p in processes)  # cancelled: terminated and joined
    assert forked[0].children == []


def test_a_conf_key_written_with_escapes_is_still_read() -> None:
    """Events whose dagRun conf spells the ``qubinode_vm`` key with an escape declare the same VM."""
    event = json.loads(
        next(line for line in REAL_EVENTS.read_text().splitlines() if '"airflowDagRun"' in line)
    )
    event["run"]["facets"]["airflowDagRun"]["dagRun"]["conf"] = {"qubinode_vm": "lab/web9"}
    plain = json.dumps(event)
    escaped = plain.replace('"qubinode_vm"', '"qubinode\\u005fvm"')
    assert escaped != plain
    for line in (plain, escaped):
        record = olevents.decode_event(line.encode())
        assert record is not None
        assert [(d.host, d.name) for d in record.conf_declared] == [("lab", "web9")]


def test_the_idle_work_runs_once_between_the_own_range_and_the_workers_results(
    tmp_path: Path, real_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path / "events.jsonl", real_lines * 4)
    steps: list[str] = []
    real_read, real_back = lf._read_range, lf._Chunk.from_bytes

    def read(*args: Any) -> lf._Chunk:
        steps.append("own range")
        return real_read(*args)

    def back(data: bytes) -> lf._Chunk:
        steps.append("worker's result")
        return real_back(data)

    monkeypatch.setattr(lf, "PARALLEL_MIN_BYTES", 1 << 20)
    pending = FileLineageSource(path, workers=2).start(None)
    assert not pending.forked  # too small: no workers, so no idle work
    pending.result(lambda: steps.append("idle"))
    assert "idle" not in steps

    monkeypatch.setattr(lf, "PARALLEL_MIN_BYTES", 1)
    pending = FileLineageSource(path, workers=3).start(None)
    monkeypatch.setattr(lf, "_read_range", read)  # (after the fork: the parent's reads only)
    monkeypatch.setattr(lf._Chunk, "from_bytes", back)
    steps.clear()
    index = pending.result(lambda: steps.append("idle"))
    assert steps == ["own range", "idle", "worker's result", "worker's result"]
    assert _summary(index) == _summary(FileLineageSource(path).read(None))


def _reaped(pid: int) -> bool:
    """Whether the reader already waited for the worker ``pid`` (no zombie, nothing running)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


def _forked_read(
    tmp_path: Path, real_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, list[Any]]:
    monkeypatch.setattr(lf, "PARALLEL_MIN_BYTES", 1)
    path = _write(tmp_path / "events.jsonl", real_lines * 3)
    pending = FileLineageSource(path, workers=3).start(None)
    processes = [process for forked in pending.forked.values() for process, _ in forked.children]
    assert len(processes) == 2
    return pending, processes


@pytest.mark.parametrize("failure", [RuntimeError("prepare failed"), KeyboardInterrupt()])
def test_workers_are_reaped_when_the_wait_for_them_fails(
    tmp_path: Path, real_lines: list[str], monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    """``idle`` (the detector's preparation) or an interrupt fails while the workers read: the read
    stops and reaps them before the error goes on (they were left running, then zombies)."""
    pending, processes = _forked_read(tmp_path, real_lines, monkeypatch)

    def idle() -> None:
        raise failure

    with pytest.raises(type(failure)):
        pending.result(idle)
    assert all(_reaped(process.pid) for process in processes)
    assert pending.forked == {}


def test_workers_are_reaped_when_the_parents_own_range_cannot_be_read(
    tmp_path: Path, real_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pending, processes = _forked_read(tmp_path, real_lines, monkeypatch)

    def unreadable(*args: Any) -> Any:  # (the children forked already: only this process sees it)
        raise OSError("the file went away")

    monkeypatch.setattr(lf, "_read_range", unreadable)
    index = pending.result()
    assert any("cannot read" in w and "the file went away" in w for w in index.report.warnings)
    assert all(_reaped(process.pid) for process in processes)


def _ignores_sigint(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:")), 16)
    return bool(mask & (1 << (signal.SIGINT - 1)))


def test_ctrl_c_leaves_the_interrupt_to_the_scan_and_no_worker_prints_a_traceback(
    tmp_path: Path, real_lines: list[str], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """The terminal sends SIGINT to the whole process group; a worker that took it printed its own
    KeyboardInterrupt traceback beside the scan's exit 130. It ignores it; the scan reaps it."""

    def reading(*args: Any) -> Any:  # a long read (in the worker; ended by the cancel below)
        time.sleep(60)

    monkeypatch.setattr(lf, "_read_range", reading)
    pending, processes = _forked_read(tmp_path, real_lines, monkeypatch)
    try:
        deadline = time.monotonic() + 30
        while not all(_ignores_sigint(p.pid) for p in processes):
            assert time.monotonic() < deadline, "the workers never ignored SIGINT"
            time.sleep(0.01)
        for process in processes:
            os.kill(process.pid, signal.SIGINT)
        assert all(p.is_alive() for p in processes)
    finally:
        pending.cancel()
    assert [p.exitcode for p in processes] == [-signal.SIGTERM] * 2
    err = capfd.readouterr().err
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err


def test_an_interrupt_between_two_forks_reaps_the_first_worker(
    tmp_path: Path, real_lines: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import multiprocessing

    monkeypatch.setattr(lf, "PARALLEL_MIN_BYTES", 1)
    path = _write(tmp_path / "events.jsonl", real_lines * 3)
    context = multiprocessing.get_context("fork")
    started: list[Any] = []
    real_start = type(context.Process()).start

    def start(self: Any) -> None:
        if started:
            raise KeyboardInterrupt
        real_start(self)
        started.append(self)

    monkeypatch.setattr(type(context.Process()), "start", start)
    with pytest.raises(KeyboardInterrupt):
        FileLineageSource(path, workers=3).start(None)
    assert len(started) == 1
    assert _reaped(started[0].pid)


_ORPHANING_PARENT = """
import sys, time
from pathlib import Path
from qubinode_recovery_provider.shadow import FileLineageSource
from qubinode_recovery_provider.shadow import lineage_file as lf

class Large:  # a range's index too large for the pipe's buffer: the worker waits for the parent
    def to_bytes(self):
        return b"x" * (1 << 20)

lf.PARALLEL_MIN_BYTES = 1
lf._read_range = lambda *args: Large()
pending = FileLineageSource(Path(sys.argv[1]), workers=3).start(None)
pids = [process.pid for forked in pending.forked.values() for process, _ in forked.children]
print("workers", *pids, flush=True)
time.sleep(600)  # killed by the test before it collects its workers
"""


def test_workers_end_when_the_parent_is_killed_before_it_collects_them(
    tmp_path: Path, real_lines: list[str]
) -> None:
    """The parent dies without its cleanup (SIGKILL, the OOM killer, a SIGTERM it does not handle)
    while its workers wait to send a large result: each worker held its own pipe's reading end
    (inherited at the fork), so its write never failed and it waited forever."""
    import sys

    import psutil
    from support.processes import Service

    path = _write(tmp_path / "events.jsonl", real_lines * 3)
    script = tmp_path / "parent.py"
    script.write_text(_ORPHANING_PARENT)
    log = tmp_path / "parent.log"
    parent = Service.start([sys.executable, str(script), str(path)], name="lineage-parent", log_path=log)
    try:
        deadline = time.monotonic() + 60
        while "workers" not in log.read_text():
            assert parent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the parent never forked its workers"
            time.sleep(0.05)
        pids = [int(pid) for pid in log.read_text().split("workers", 1)[1].split()]
        workers = [psutil.Process(pid) for pid in pids]
        assert len(workers) == 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.process.wait(30)

        def ended(process: psutil.Process) -> bool:
            try:
                return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        deadline = time.monotonic() + 60  # (they end at once; a stuck worker never would)
        while not all(ended(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [ended(w) for w in workers] == [True, True]
        assert "Traceback" not in log.read_text()
    finally:
        parent.stop()


def test_ctrl_c_right_after_a_fork_prints_no_worker_traceback(
    tmp_path: Path, real_lines: list[str], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C that reaches a worker between its fork and its first line (multiprocessing's start-up in
    the child) was a KeyboardInterrupt there, with its traceback: the worker now starts with SIGINT
    blocked, so it only ever sees the interrupt once it ignores it; the parent gets its own."""
    import multiprocessing.util
    import weakref

    class Hook:
        pass

    hook = Hook()
    monkeypatch.setattr(multiprocessing.util, "_afterfork_registry", weakref.WeakValueDictionary())
    multiprocessing.util.register_after_fork(hook, lambda _: os.kill(os.getpid(), signal.SIGINT))
    pending, processes = _forked_read(tmp_path, real_lines, monkeypatch)
    index = pending.result()
    assert [p.exitcode for p in processes] == [0, 0]
    assert index.runs
    err = capfd.readouterr().err
    assert "KeyboardInterrupt" not in err
    assert "Traceback" not in err
