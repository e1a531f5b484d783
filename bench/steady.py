"""Steady state of the scheduled shadow scan: 15 minutes of new work over a large lineage history.

    python bench/bench_shadow.py --steady [--history-gb 5] [--repeats 5]

Builds, in a temporary directory:

- a lineage file of ``--history-gb`` gigabytes: the base estate's events (10,000 older runs, about
  480 MB) repeated, then two batches of 15 minutes of work each (130 runs, 7 s apart, the base estate's
  mix of planted shadow errors), stamped with the real clock so that the scan's watermarks apply: the
  first batch was checked by the previous scheduled scan, the second is new;
- a ledger holding the watermarks that previous scan left: the runs' latest end date with the runs it
  checked in the overlap, and the lineage file's checkpoints (end of the history 32 minutes ago, end of
  the first batch 16 minutes ago);
- the runs file the REST API would answer for the incremental query (``end_date_gte`` = the watermark
  minus the overlap): the runs of both batches that ended since then.

Each measurement is the whole command a scheduled scan amounts to::

    qubinode-recovery scan --incremental --ledger sqlite:///<copy of the seeded ledger> \\
        --runs-file runs.json --lineage-file events.jsonl --libvirt-uri ... --json --summary

Correctness: its findings must equal those of a scan of the same new runs over a lineage file that
holds only the two batches (no history), without watermarks.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from estate import EstateWriter, generate

BATCH_RUNS = 130  # 15 minutes of runs 7 seconds apart
OVERLAP = timedelta(minutes=10)


def _copy_repeated(source: Path, target: Path, size: int) -> None:
    """``target`` = ``source`` repeated until it holds ``size`` bytes (whole copies)."""
    chunk = source.stat().st_size
    with target.open("wb") as out, source.open("rb") as src:
        while out.tell() + chunk <= max(size, chunk):
            src.seek(0)
            shutil.copyfileobj(src, out, 16 << 20)


def _batches(
    directory: Path, now: datetime
) -> tuple[EstateWriter, list[dict[str, Any]], list[dict[str, Any]]]:
    """Two batches of 15 minutes of runs, the second ending now: (writer, events, runs+tis pages)."""
    writer = EstateWriter(2 * BATCH_RUNS, 0, 2_000, 10, seed=11, anchor=now - timedelta(minutes=31))
    runs, tis, events = [], [], []
    for run in range(2 * BATCH_RUNS):
        runs.append(writer.dag_run(run))
        for index, (task_id, state) in enumerate(writer.task_states(run).items()):
            tis.append(writer.task_instance(run, task_id, index, state))
        events.append(writer.events_of(run))
    writer._write_hosts(directory)
    return writer, events, [{"dag_runs": runs, "task_instances": tis}]


def build(directory: Path, history_bytes: int) -> dict[str, Any]:
    """Write the history, the batches, the runs file and the seeded ledger; describe them."""
    from qubinode_recovery_provider.store import Ledger

    base = generate(directory / "base")
    lineage = directory / "events.jsonl"
    started = time.perf_counter()
    _copy_repeated(base.lineage_file, lineage, history_bytes)
    history_end = lineage.stat().st_size
    history_s = time.perf_counter() - started
    shutil.rmtree(directory / "base")

    now = datetime.now(UTC)
    _, events, pages = _batches(directory, now)
    with lineage.open("a", encoding="utf-8") as out:
        for run_events in events[:BATCH_RUNS]:
            out.writelines(json.dumps(e, separators=(", ", ": ")) + "\n" for e in run_events)
        first_batch_end = out.tell()
        for run_events in events[BATCH_RUNS:]:
            out.writelines(json.dumps(e, separators=(", ", ": ")) + "\n" for e in run_events)
    only_batches = directory / "batches.jsonl"
    with only_batches.open("w", encoding="utf-8") as out:
        for run_events in events:
            out.writelines(json.dumps(e, separators=(", ", ": ")) + "\n" for e in run_events)

    runs = pages[0]["dag_runs"]
    ends = [datetime.fromisoformat(r["end_date"].replace("Z", "+00:00")) for r in runs]
    watermark = max(ends[:BATCH_RUNS])
    answered = {r["dag_run_id"] for r, end in zip(runs, ends, strict=True) if end >= watermark - OVERLAP}
    checked = [[r["dag_id"], r["dag_run_id"]] for r in runs[:BATCH_RUNS] if r["dag_run_id"] in answered]
    runs_file = directory / "runs.json"
    runs_file.write_text(
        json.dumps(
            {
                "dag_runs": [r for r in runs if r["dag_run_id"] in answered],
                "task_instances": [t for t in pages[0]["task_instances"] if t["dag_run_id"] in answered],
            }
        )
    )
    inode = lineage.stat().st_ino
    ledger_file = directory / "seeded-ledger.db"
    with Ledger(f"sqlite:///{ledger_file}", directory / "spool") as ledger:
        ledger.set_watermark(
            f"runs-file:{runs_file.resolve()}", {"end_date": watermark.isoformat(), "checked": checked}
        )
        checkpoints = [
            [(now - timedelta(minutes=32)).isoformat(), inode, history_end],
            [(now - timedelta(minutes=16)).isoformat(), inode, first_batch_end],
        ]
        ledger.set_watermark(f"lineage-file:{lineage.resolve()}", {"checkpoints": checkpoints})
    reference = directory / "reference-runs.json"
    fresh = {r["dag_run_id"] for r in runs[BATCH_RUNS:]} | (answered - {c[1] for c in checked})
    reference.write_text(
        json.dumps(
            {
                "dag_runs": [r for r in runs if r["dag_run_id"] in fresh],
                "task_instances": [t for t in pages[0]["task_instances"] if t["dag_run_id"] in fresh],
            }
        )
    )
    return {
        "lineage": lineage,
        "only_batches": only_batches,
        "runs_file": runs_file,
        "reference_runs": reference,
        "ledger": ledger_file,
        "hosts": sorted(directory.glob("kvm-*.xml")),
        "history_bytes": history_end,
        "new_bytes": lineage.stat().st_size - history_end,
        "history_write_s": round(history_s, 1),
        "runs_answered": len(answered),
        "runs_new": len(fresh),
    }


def _scan(argv: list[str]) -> tuple[float, int, dict[str, Any], Counter[str], float]:
    """Run one scan: its wall, exit code, summary, findings and CPU seconds (``wait4``: the process,
    its threads and any worker it forked)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        findings = Counter(
            (f["type"], f["run_id"], f["task_id"], f["resource"])
            for f in map(json.loads, out.read().splitlines())
        )
        summary = json.loads(err.read().decode().strip().splitlines()[-1])
    return wall, code, summary, findings, usage.ru_utime + usage.ru_stime


def measure(cli: str, built: dict[str, Any], repeats: int) -> dict[str, Any]:
    """Time ``repeats`` incremental scans (each from a fresh copy of the seeded ledger)."""
    hosts = [a for h in built["hosts"] for a in ("--libvirt-uri", f"{h.stem}=test://{h.resolve()}")]
    reference = _scan(
        [cli, "scan", "--runs-file", str(built["reference_runs"]),
         "--lineage-file", str(built["only_batches"]), *hosts, "--json", "--summary"]
    )  # fmt: skip
    walls, cpus, summaries, correct = [], [], [], True
    for attempt in range(repeats + 1):
        ledger = built["ledger"].with_name(f"ledger-{attempt}.db")
        shutil.copy2(built["ledger"], ledger)
        wall, code, summary, findings, cpu = _scan(
            [cli, "scan", "--incremental", "--ledger", f"sqlite:///{ledger}", "--runs-file",
             str(built["runs_file"]), "--lineage-file", str(built["lineage"]), *hosts, "--json", "--summary"]
        )  # fmt: skip
        correct = correct and findings == reference[3] and code == reference[1]
        if attempt:  # the first one warms the page cache
            walls.append(wall)
            cpus.append(cpu)
            summaries.append(summary)
    fastest = summaries[walls.index(min(walls))]
    return {
        "history_gb": round(built["history_bytes"] / 1e9, 2),
        "new_mb_after_checkpoint": round(built["new_bytes"] / 1e6, 1),
        "runs_answered_by_api": built["runs_answered"],
        "runs_checked": fastest["stats"].get("runs_checked"),
        "lineage_records_read": fastest["stats"].get("lineage_records"),
        "findings": dict(Counter(k[0] for k in reference[3].elements())),
        "correct": correct,
        "repeats": repeats,
        "wall_s_median": round(statistics.median(walls), 3),
        "wall_s_min": round(min(walls), 3),
        "cpu_s_median": round(statistics.median(cpus), 3),
        "phases_s_of_fastest": fastest["timings"],
        # the scan itself, as the scheduled scan's task (which has its imports loaded already) runs it
        "phases_s_median": {
            phase: round(statistics.median(s["timings"].get(phase, 0.0) for s in summaries), 4)
            for phase in fastest["timings"]
        },
        "warnings_of_fastest": [w for w in fastest["warnings"] if "incremental" in w or "runs:" in w],
    }


def run(cli: str, history_gb: float, repeats: int, workdir: Path | None) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="shadow-steady-", dir=workdir))
    try:
        built = build(directory, int(history_gb * 1e9))
        result = measure(cli, built, repeats)
        result["history_write_s"] = built["history_write_s"]
        return result
    finally:
        shutil.rmtree(directory, ignore_errors=True)
