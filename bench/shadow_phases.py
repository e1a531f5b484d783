"""CPU seconds of each phase of a full shadow scan, in one process, best of N (steadier than wall time
on a busy machine: other processes lengthen the wall, much less the CPU a phase needs).

    python bench/estate.py /tmp/estate                      # the base estate, once
    python bench/shadow_phases.py /tmp/estate [--repeats 3]
    python bench/shadow_phases.py /tmp/estate --as-scan     # the parts as the scan runs them

Phases: ``check`` (the CLI's check of ``--runs-file``, whose pages the scan reuses), ``runs`` (the runs
and task instances), ``lineage`` (the whole lineage file, one process), ``detect`` (with inference,
without libvirt listings). To compare with other code, run it with that code first on ``PYTHONPATH``
(``git archive REF qubinode_recovery_provider | tar -x -C /tmp/ref``; ``PYTHONPATH=/tmp/ref``).

``--as-scan``: the cyclic garbage collector paused as the scan pauses it, and the parts the phases
hide: the forked lineage worker's share written for the pipe (``worker_to_bytes``) and read back and
merged by the calling process (``parent_from_bytes``, ``parent_merge``), detection on its first call
(``detect_cold``: the commands parsed for the first time, as in a scan) and without inference
(``detect_no_infer``), and ``resume_gc``: leaving the pause with everything the scan built alive, up to
the first young collection after it.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qubinode_recovery_provider.cli import scan as cli_scan
from qubinode_recovery_provider.shadow import lineage_file
from qubinode_recovery_provider.shadow import scan as shadow_scan
from qubinode_recovery_provider.shadow.detector import ShadowErrorDetector
from qubinode_recovery_provider.shadow.lineage import LineageIndex
from qubinode_recovery_provider.shadow.lineage_file import FileLineageSource
from qubinode_recovery_provider.shadow.runs import RunsFileSource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("estate", type=Path, help="a directory written by bench/estate.py")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--as-scan", action="store_true", help="GC paused; transport, cold detection")
    args = parser.parse_args()
    runs_file, events = args.estate / "runs.json", args.estate / "events.jsonl"
    best: dict[str, float] = {}
    found: dict[str, int] = {}
    for _ in range(args.repeats):
        if args.as_scan:
            found = _as_scan(best, runs_file, events)
            continue
        mark = time.process_time()
        pages = cli_scan.check_runs_file(str(runs_file))
        _keep(best, "check", mark)
        # code without the shared pages: its source reads the file again
        source = RunsFileSource(runs_file, pages=pages) if pages is not None else RunsFileSource(runs_file)
        mark = time.process_time()
        runs = source.fetch()
        _keep(best, "runs", mark)
        mark = time.process_time()
        index = FileLineageSource(events).read({r.key for r in runs})
        _keep(best, "lineage", mark)
        mark = time.process_time()
        found = ShadowErrorDetector().detect(runs, index, []).by_type()
        _keep(best, "detect", mark)
        gc.collect()
    total = round(sum(v for k, v in best.items() if k in ("check", "runs", "lineage", "detect")), 3)
    print(json.dumps({"cpu_s_best": best, "sum": total, "findings_without_inventory": found}))


def _as_scan(best: dict[str, float], runs_file: Path, events: Path) -> dict[str, int]:
    """One round of ``--as-scan`` (each part in this process; the worker's share as the scan cuts it)."""
    pause = getattr(shadow_scan, "no_cyclic_gc", None) or shadow_scan._no_cyclic_gc  # (older code)
    with pause():
        pages = _timed(best, "check", lambda: cli_scan.check_runs_file(str(runs_file)))
        runs = _timed(best, "runs", RunsFileSource(runs_file, pages=pages).fetch)
        wanted = {r.key for r in runs}
        index = _timed(best, "lineage", lambda: FileLineageSource(events).read(wanted))
        size = events.stat().st_size
        cuts = lineage_file._boundaries(events, size, 2, lineage_file._EARLY_SHARE)
        begin, end = next(itertools.pairwise(cuts))
        chunk = lineage_file._read_range(str(events), begin, end, None)
        data = _timed(best, "worker_to_bytes", chunk.to_bytes)
        back = _timed(best, "parent_from_bytes", lambda: lineage_file._Chunk.from_bytes(data))
        _timed(best, "parent_merge", lambda: LineageIndex(wanted).merge_dump(back.dumped))
        found = _timed(best, "detect_cold", lambda: ShadowErrorDetector().detect(runs, index, []))
        _timed(best, "detect", lambda: ShadowErrorDetector().detect(runs, index, []))
        _timed(best, "detect_no_infer", lambda: ShadowErrorDetector(infer=False).detect(runs, index, []))
        mark = time.process_time()
    young = [[] for _ in range(2000)]  # (enough allocations for a young collection)
    _keep(best, "resume_gc", mark)
    return {**found.by_type()} if young else {}


def _timed(best: dict[str, float], name: str, work: Callable[[], Any]) -> Any:
    mark = time.process_time()
    result = work()
    _keep(best, name, mark)
    return result


def _keep(best: dict[str, float], name: str, mark: float) -> None:
    best[name] = round(min(best.get(name, float("inf")), time.process_time() - mark), 3)


if __name__ == "__main__":
    main()
