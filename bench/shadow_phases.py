"""CPU seconds of each phase of a full shadow scan, in one process, best of N (steadier than wall time
on a busy machine: other processes lengthen the wall, much less the CPU a phase needs).

    python bench/estate.py /tmp/estate                      # the base estate, once
    python bench/shadow_phases.py /tmp/estate [--repeats 3]

Phases: ``check`` (the CLI's check of ``--runs-file``, whose pages the scan reuses), ``runs`` (the runs
and task instances), ``lineage`` (the whole lineage file, one process), ``detect`` (with inference,
without libvirt listings). To compare with other code, run it with that code first on ``PYTHONPATH``
(``git archive REF qubinode_recovery_provider | tar -x -C /tmp/ref``; ``PYTHONPATH=/tmp/ref``).
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

from qubinode_recovery_provider.cli import scan as cli_scan
from qubinode_recovery_provider.shadow.detector import ShadowErrorDetector
from qubinode_recovery_provider.shadow.lineage_file import FileLineageSource
from qubinode_recovery_provider.shadow.runs import RunsFileSource


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("estate", type=Path, help="a directory written by bench/estate.py")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs_file, events = args.estate / "runs.json", args.estate / "events.jsonl"
    best: dict[str, float] = {}
    found: dict[str, int] = {}
    for _ in range(args.repeats):
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
    total = round(sum(best.values()), 3)
    print(json.dumps({"cpu_s_best": best, "sum": total, "findings_without_inventory": found}))


def _keep(best: dict[str, float], name: str, mark: float) -> None:
    best[name] = round(min(best.get(name, float("inf")), time.process_time() - mark), 3)


if __name__ == "__main__":
    main()
