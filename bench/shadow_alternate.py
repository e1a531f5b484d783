"""The whole full-scan command, alternated between code trees: wall and CPU (``wait4``, the forked
lineage worker included) of each, with the phases of its fastest run and whether every run was correct.

    python bench/estate.py /tmp/estate
    git archive REF qubinode_recovery_provider | tar -x -C /tmp/ref
    python -m compileall -q /tmp/ref qubinode_recovery_provider
    python bench/shadow_alternate.py /tmp/estate 8 /tmp/ref .    # 8 rounds, the order swapped each

Each tree runs ``qubinode-recovery scan`` (its own ``cli.console_main``) with ``bench_shadow.py``'s
arguments, the tree first on ``PYTHONPATH``; one warm-up run each is not counted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ENTRY = (
    "import sys; from qubinode_recovery_provider.cli import console_main; "
    "sys.argv[0] = 'qubinode-recovery'; sys.exit(console_main())"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("estate", type=Path, help="a directory written by bench/estate.py")
    parser.add_argument("rounds", type=int)
    parser.add_argument("trees", nargs="+", help="directories holding a qubinode_recovery_provider package")
    args = parser.parse_args()
    expected = {k: v for k, v in json.loads((args.estate / "expected.json").read_text()).items() if v}
    results: dict[str, list[dict[str, Any]]] = {tree: [] for tree in args.trees}
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    for tree in args.trees:
        _once(args.estate, tree)
    for number in range(args.rounds):
        for tree in args.trees if number % 2 == 0 else args.trees[::-1]:
            results[tree].append(_once(args.estate, tree))
    report = {
        "load_average_at_start": load_at_start,
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    for tree, runs in results.items():
        fastest = min(runs, key=lambda r: r["wall_s"])
        report[tree] = {
            "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 3),
            "wall_s_min": round(fastest["wall_s"], 3),
            "cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs), 3),
            "cpu_s_min": round(min(r["cpu_s"] for r in runs), 3),
            "correct": all(r["found"] == expected for r in runs),
            "phases_s_of_fastest": fastest["timings"],
        }
    print(json.dumps(report, indent=2))


def _once(estate: Path, tree: str) -> dict[str, Any]:
    command = [sys.executable, "-c", ENTRY, "scan", "--runs-file", str(estate / "runs.json")]
    command += ["--lineage-file", str(estate / "events.jsonl")]
    for host in sorted(estate.glob("*.xml")):
        command += ["--libvirt-uri", f"{host.stem}=test://{host.resolve()}"]
    command += ["--json", "--summary", "--lineage-workers", "auto"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env={**os.environ, "PYTHONPATH": tree})
        _, _, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        found = dict(Counter(json.loads(line)["type"] for line in out.read().splitlines()))
        timings = json.loads(err.read().splitlines()[-1])["timings"]
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "found": found, "timings": timings}


if __name__ == "__main__":
    main()
