"""Incremental scans: watermarks per source in a real ledger; only new lineage read; late pairs found;
rotation and truncation of the lineage file; ``--full`` rescans."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from qubinode_recovery_provider.cli import main
from qubinode_recovery_provider.shadow import FileLineageSource, RunsFileSource, run_scan
from qubinode_recovery_provider.shadow.watermarks import OVERLAP, IncrementalScan
from qubinode_recovery_provider.store import Ledger

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
DAG = "lab_deploy"


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _task_event(run: str, kind: str, when: datetime, task: str = "create_vm") -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": _z(when),
        "run": {
            "runId": f"{run}-{task}",
            "facets": {
                "airflow": {
                    "dag": {"dag_id": DAG},
                    "dagRun": {"dag_id": DAG, "run_id": run},
                    "task": {"task_id": task},
                    "taskInstance": {"try_number": 1},
                }
            },
        },
        "job": {"namespace": "ns", "name": f"{DAG}.{task}", "facets": {"jobType": {"jobType": "TASK"}}},
    }


def _dag_event(run: str, kind: str, when: datetime) -> dict[str, Any]:
    return {
        "eventType": kind,
        "eventTime": _z(when),
        "run": {
            "runId": f"{run}-dag",
            "facets": {
                "airflowDagRun": {"dag": {"dag_id": DAG}, "dagRun": {"dag_id": DAG, "run_id": run}},
                "airflowState": {"dagRunState": "success", "tasksState": {"create_vm": "success"}},
            },
        },
        "job": {"namespace": "ns", "name": DAG, "facets": {"jobType": {"jobType": "DAG"}}},
    }


class Estate:
    """A growing history: runs (a runs file) and their events (an appended lineage file)."""

    def __init__(self, directory: Path) -> None:
        self.runs_file = directory / "runs.json"
        self.events = directory / "events.jsonl"
        self.events.touch()
        self.runs_file.write_text(json.dumps({"dag_runs": []}))
        self.runs: list[dict[str, Any]] = []
        self.tis: list[dict[str, Any]] = []

    def start(self, run: str, when: datetime) -> None:
        self._append([_task_event(run, "START", when)])

    def finish(self, run: str, started: datetime, ended: datetime) -> None:
        self._append([_task_event(run, "COMPLETE", ended), _dag_event(run, "COMPLETE", ended)])
        self.runs.append(
            {
                "dag_id": DAG,
                "dag_run_id": run,
                "state": "success",
                "start_date": _z(started),
                "end_date": _z(ended),
            }
        )
        self.tis.append(
            {"dag_id": DAG, "dag_run_id": run, "task_id": "create_vm", "state": "success", "try_number": 1}
        )
        self.runs_file.write_text(json.dumps({"dag_runs": self.runs, "task_instances": self.tis}))

    def run(self, run: str, started: datetime, minutes: int = 5) -> None:
        self.start(run, started)
        self.finish(run, started, started + timedelta(minutes=minutes))

    def _append(self, events: list[dict[str, Any]]) -> None:
        with self.events.open("a") as out:
            out.writelines(json.dumps(e) + "\n" for e in events)


@pytest.fixture
def estate(tmp_path: Path) -> Estate:
    return Estate(tmp_path)


@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool") as opened:
        yield opened


def _scan(estate: Estate, ledger: Ledger, now: datetime, full: bool = False) -> Any:
    incremental = IncrementalScan(ledger, full=full, now=now)
    result = run_scan(
        RunsFileSource(estate.runs_file),
        FileLineageSource(estate.events),
        since=now - timedelta(hours=2),
        until=now,
        incremental=incremental,
    )
    incremental.commit()
    return result


def _missing(result: Any) -> list[tuple[str | None, str | None]]:
    return [(f.run_id, f.task_id) for f in result.findings if f.type.value.startswith("lineage")]


def test_second_scan_reads_only_new_events_and_still_pairs_a_long_run(estate: Estate, ledger: Ledger) -> None:
    for n in range(20):
        estate.run(f"old{n}", T0 - timedelta(minutes=100 - n))
    first = _scan(estate, ledger, now=T0 - timedelta(minutes=20))
    assert first.stats["runs_read"] == 20
    assert first.stats["lineage_records"] == 20 * 3
    assert _missing(first) == []

    # a long run starts now (its START before the next checkpoint) and ends after the next scan
    estate.start("long", T0 + timedelta(minutes=60))
    estate.run("quick1", T0 + timedelta(minutes=61))
    second = _scan(estate, ledger, now=T0 + timedelta(minutes=70))
    assert second.stats["runs_read"] == 1  # quick1 only: the runs before the watermark are done
    assert second.stats["lineage_records"] == 4  # long's START and quick1's three, not the history

    estate.finish("long", T0 + timedelta(minutes=60), T0 + timedelta(minutes=80))
    estate.run("quick2", T0 + timedelta(minutes=81))
    third = _scan(estate, ledger, now=T0 + timedelta(minutes=90))
    assert {r for r, _ in _missing(third)} == set()  # the long run's START (read before) is found again
    assert third.stats["runs_read"] == 2  # long and quick2; quick1 (in the overlap) was checked before
    assert third.stats["lineage_records"] == 9  # read from the first checkpoint, before long started
    stored = ledger.watermark(f"lineage-file:{estate.events}")
    assert stored is not None
    assert stored["offset"] == estate.events.stat().st_size
    assert len(stored["checkpoints"]) == 3


def test_without_a_watermark_a_late_pair_is_missing_lineage_so_the_overlap_matters(
    estate: Estate, ledger: Ledger
) -> None:
    """The same history with a checkpoint too late to hold the long run's START: the scan falls back to
    the window and still pairs it (no false lineage_missing)."""
    estate.start("long", T0)
    first = _scan(estate, ledger, now=T0 + timedelta(minutes=1))
    estate.finish("long", T0, T0 + timedelta(minutes=30))
    second = _scan(estate, ledger, now=T0 + timedelta(minutes=31))
    assert _missing(first) == []
    assert _missing(second) == []
    assert any("no checkpoint before the runs' start" in w for w in second.warnings)


def test_rotation_is_followed_into_the_renamed_file(estate: Estate, ledger: Ledger) -> None:
    for n in range(10):
        estate.run(f"old{n}", T0 + timedelta(minutes=n))
    _scan(estate, ledger, now=T0 + timedelta(minutes=20))
    estate.start("spanning", T0 + timedelta(minutes=30))
    _scan(estate, ledger, now=T0 + timedelta(minutes=31))
    estate.run("before_rotation", T0 + timedelta(minutes=32))
    estate.events.rename(estate.events.with_name("events.jsonl.1"))  # logrotate's rename
    estate.events.touch()
    estate.finish("spanning", T0 + timedelta(minutes=30), T0 + timedelta(minutes=45))
    result = _scan(estate, ledger, now=T0 + timedelta(minutes=50))
    assert result.stats["runs_read"] == 2
    assert _missing(result) == []
    assert result.stats["lineage_records"] < 30
    assert any("rotated since the last scan" in w for w in result.warnings)


def test_truncation_in_place_reads_the_copy_and_the_new_start(estate: Estate, ledger: Ledger) -> None:
    for n in range(5):
        estate.run(f"old{n}", T0 + timedelta(minutes=n))
    _scan(estate, ledger, now=T0 + timedelta(minutes=10))
    estate.start("spanning", T0 + timedelta(minutes=25))
    shutil.copy2(estate.events, estate.events.with_name("events.jsonl.1"))  # copytruncate
    os.truncate(estate.events, 0)
    estate.finish("spanning", T0 + timedelta(minutes=25), T0 + timedelta(minutes=35))
    result = _scan(estate, ledger, now=T0 + timedelta(minutes=40))
    assert result.stats["runs_read"] == 1
    assert _missing(result) == []
    assert any("truncated since the last scan" in w for w in result.warnings), result.warnings


def test_full_rescan_reads_everything_and_stores_fresh_watermarks(estate: Estate, ledger: Ledger) -> None:
    for n in range(10):
        estate.run(f"r{n}", T0 + timedelta(minutes=n))
    _scan(estate, ledger, now=T0 + timedelta(minutes=20))
    again = _scan(estate, ledger, now=T0 + timedelta(minutes=21))
    assert again.stats["runs_read"] == 0
    full = _scan(estate, ledger, now=T0 + timedelta(minutes=22), full=True)
    assert full.stats["runs_read"] == 10
    assert full.stats["lineage_records"] == 30


def test_runs_watermark_reads_from_the_last_end_minus_the_overlap(estate: Estate, ledger: Ledger) -> None:
    estate.run("a", T0)
    _scan(estate, ledger, now=T0 + timedelta(minutes=10))
    stored = ledger.watermark(f"runs-file:{estate.runs_file}")
    assert stored == {"end_date": (T0 + timedelta(minutes=5)).isoformat(), "checked": [[DAG, "a"]]}
    # b ended before a, inside the overlap, but was committed only after the first scan
    estate.run("b", T0 + timedelta(minutes=5) - OVERLAP + timedelta(minutes=1), minutes=0)
    result = _scan(estate, ledger, now=T0 + timedelta(minutes=30))
    assert result.stats["runs_read"] == 1  # b; a is in the overlap but was checked before
    assert any("1 runs in the overlap were checked before" in w for w in result.warnings)


def test_cli_incremental_and_full(estate: Estate, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = datetime.now(UTC)
    for n in range(6):
        estate.run(f"r{n}", now - timedelta(minutes=50 - n))
    ledger_url = f"sqlite:///{tmp_path / 'cli-ledger.db'}"
    argv = ["scan", "--runs-file", str(estate.runs_file), "--lineage-file", str(estate.events)]
    argv += ["--ledger", ledger_url, "--summary", "--json"]
    assert main([*argv, "--incremental"]) == 0
    err = capsys.readouterr().err
    assert "stored 2 watermarks" in err
    assert main([*argv, "--incremental"]) == 0
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert summary["stats"]["runs_read"] == 0
    assert main([*argv, "--full"]) == 0
    err = capsys.readouterr().err
    assert "stored 2 watermarks (full rescan)" in err
    assert json.loads(err.strip().splitlines()[-1])["stats"]["runs_read"] == 6


def test_a_scan_resuming_from_a_checkpoint_lists_the_hosts_from_the_start_and_finds_the_same(
    estate: Estate, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a stored checkpoint the read is a few new lines, read in the scan's own process: the host
    listings start before the runs are read. The first scan, without one, forks its lineage workers
    first and starts the listings after them."""
    import qubinode_recovery_provider.shadow.lineage_file as lf
    from qubinode_recovery_provider.shadow.inventory import InventoryListing

    order: list[str] = []
    real_fork, real_listing, real_fetch = lf._Forked.start, InventoryListing.start, RunsFileSource.fetch

    def fork(*args: Any, **kwargs: Any) -> Any:
        order.append("fork")
        return real_fork(*args, **kwargs)

    def listing(self: Any) -> Any:
        order.append("listing")
        return real_listing(self)

    def fetch(self: Any, *args: Any) -> Any:
        order.append("runs")
        return real_fetch(self, *args)

    monkeypatch.setattr(lf, "PARALLEL_MIN_BYTES", 1)
    monkeypatch.setattr(lf._Forked, "start", fork)
    monkeypatch.setattr(InventoryListing, "start", listing)
    monkeypatch.setattr(RunsFileSource, "fetch", fetch)

    def scan(now: datetime) -> Any:
        order.clear()
        incremental = IncrementalScan(ledger, now=now)
        result = run_scan(
            RunsFileSource(estate.runs_file),
            FileLineageSource(estate.events, workers=2),
            since=now - timedelta(hours=2),
            until=now,
            incremental=incremental,
        )
        incremental.commit()
        return result

    for n in range(5):
        estate.run(f"old{n}", T0 - timedelta(minutes=100 - n))
    first = scan(T0 - timedelta(minutes=20))
    assert order[:3] == ["runs", "fork", "listing"]
    assert first.stats["lineage_records"] == 5 * 3
    estate.start("long", T0 + timedelta(minutes=60))
    estate.run("quick1", T0 + timedelta(minutes=61))
    second = scan(T0 + timedelta(minutes=70))
    assert order[:2] == ["listing", "runs"]
    assert "fork" not in order
    assert second.stats["lineage_records"] == 4
    assert _missing(second) == []
