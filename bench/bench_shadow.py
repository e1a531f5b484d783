"""Speed and memory of the shadow scan, end to end from local sources.

    python bench/bench_shadow.py             # base + growth per dimension -> bench/results/shadow.json
    python bench/bench_shadow.py --quick      # base estate only
    python bench/bench_shadow.py --workers 1  # lineage read in one process only
    python bench/bench_shadow.py --steady     # scheduled incremental scan over a 5 GB history
                                              # (bench/steady.py) -> bench/results/shadow_steady.json

The base estate (bench/estate.py) is 10,000 finished runs with 40,000 task instances (REST API JSON),
100,000 OpenLineage events (about 480 MB of JSON lines shaped like the Airflow provider's) and 2,000
libvirt domains on 10 hosts (libvirt test-driver node XML files, listed through the real libvirt
library). Each measurement is the wall time of the complete command a user runs::

    qubinode-recovery scan --runs-file runs.json --lineage-file events.jsonl \\
        --libvirt-uri kvm-00=test:///.../kvm-00.xml ... --json

(process start, imports, reading, detection, output) with its CPU time and peak RSS (``wait4``), and
the scan's own phase timings. Every run must report exactly the shadow errors planted in the estate.
The package is byte-compiled first, as an installed one is (this machine sets PYTHONDONTWRITEBYTECODE).
Growth: one dimension at a time is varied around the base estate.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from estate import Estate

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CLI = str(Path(sys.executable).with_name("qubinode-recovery"))
BASE = {"runs": 10_000, "events": 100_000, "domains": 2_000, "hosts": 10}
GROWTH = {
    "runs": [2_500, 5_000, 10_000, 15_000],
    "events": [60_000, 100_000, 150_000, 200_000],
    "domains": [500, 1_000, 2_000, 4_000],
    "hosts": [1, 5, 10, 20],
}


def scan_once(estate: Estate, workers: str) -> dict[str, Any]:
    """Run the CLI once; wall, CPU and peak RSS of the process, its summary and its findings."""
    command = [
        CLI,
        "scan",
        "--runs-file",
        str(estate.runs_file),
        "--lineage-file",
        str(estate.lineage_file),
        *estate.libvirt_args(),
        "--json",
        "--summary",
        "--lineage-workers",
        workers,
    ]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        findings = [json.loads(line) for line in out.read().splitlines()]
        summary = json.loads(err.read().splitlines()[-1])
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "exit_code": proc.returncode,
        "timings": summary["timings"],
        "found": dict(Counter(f["type"] for f in findings)),
    }


def measure(estate: Estate, repeats: int, workers: str) -> dict[str, Any]:
    scan_once(estate, workers)  # warm the page cache: the files were just written
    runs = [scan_once(estate, workers) for _ in range(repeats)]
    expected = {k: v for k, v in estate.expected.items() if v}
    correct = all(r["found"] == expected and r["exit_code"] == 1 for r in runs)
    best = min(runs, key=lambda r: r["wall_s"])
    return {
        "counts": estate.counts,
        "expected_findings": expected,
        "found_findings": runs[0]["found"],
        "correct": correct,
        "repeats": repeats,
        "wall_s_median": round(statistics.median(r["wall_s"] for r in runs), 3),
        "wall_s_min": round(best["wall_s"], 3),
        "cpu_s_median": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "peak_rss_mb_max": round(max(r["peak_rss_mb"] for r in runs), 1),
        "phases_s_of_fastest": best["timings"],
    }


def make_estate(directory: Path, sizes: dict[str, int]) -> Estate:
    """Generate in a child process, so that this process stays small: a child forked from a big
    parent would inherit its resident size in its ``ru_maxrss``."""
    command = [sys.executable, str(Path(__file__).with_name("estate.py")), str(directory)]
    for key, value in sizes.items():
        command += [f"--{key}", str(value)]
    report = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)
    hosts = {p.stem: p for p in sorted(directory.glob("*.xml"))}
    return Estate(
        directory,
        directory / "runs.json",
        directory / "events.jsonl",
        hosts,
        report["expected"],
        report["counts"],
    )


def with_estate(workdir: Path, sizes: dict[str, int], repeats: int, workers: str) -> dict[str, Any]:
    directory = workdir / "_".join(f"{k}{v}" for k, v in sizes.items())
    estate = make_estate(directory, sizes)
    try:
        return {"sizes": sizes, **measure(estate, repeats, workers)}
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares seconds per unit."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / denominator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the base estate only")
    parser.add_argument("--repeats", type=int, default=5, help="measured scans of the base estate")
    parser.add_argument("--workers", default="auto", help="--lineage-workers of the scan (auto or N)")
    parser.add_argument("--workdir", type=Path, default=None, help="where estates are written (temporary)")
    parser.add_argument(
        "--steady", action="store_true", help="the incremental steady state (bench/steady.py)"
    )
    parser.add_argument("--history-gb", type=float, default=5.0, help="lineage history of --steady (GB)")
    args = parser.parse_args()
    # byte-compiled first, as an installed package is: this machine's environment sets
    # PYTHONDONTWRITEBYTECODE, which would make every measured scan compile our modules again
    compileall.compile_dir(str(ROOT / "qubinode_recovery_provider"), quiet=1)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    if args.steady:
        return steady_main(args, load_at_start)
    workdir = Path(tempfile.mkdtemp(prefix="shadow-bench-", dir=args.workdir))
    try:
        base = with_estate(workdir, BASE, args.repeats, args.workers)
        print(json.dumps(base, indent=2), flush=True)
        growth: dict[str, Any] = {}
        if not args.quick:
            growth = measure_growth(workdir, base, args.workers)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "command": "python bench/bench_shadow.py" + (" --quick" if args.quick else ""),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "budget_s": 2.0,
        "base": base,
        "within_budget": base["wall_s_median"] < 2.0,
        "growth": growth,
    }
    RESULTS.mkdir(exist_ok=True)
    name = "shadow.json" if not args.quick else "shadow_quick.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS / name}")
    return 0 if base["correct"] else 1


def steady_main(args: argparse.Namespace, load_at_start: list[float]) -> int:
    import steady

    result = steady.run(CLI, args.history_gb, args.repeats, args.workdir)
    result = {
        "command": f"python bench/bench_shadow.py --steady --history-gb {args.history_gb:g}",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": load_at_start,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "budget_s": 0.3,
        **result,
    }
    print(json.dumps(result, indent=2))
    RESULTS.mkdir(exist_ok=True)
    name = f"shadow_steady_{args.history_gb:g}gb.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS / name}")
    return 0 if result["correct"] else 1


def measure_growth(workdir: Path, base: dict[str, Any], workers: str) -> dict[str, Any]:
    growth: dict[str, Any] = {}
    for dimension, values in GROWTH.items():
        points = []
        for value in values:
            if value == BASE[dimension]:
                point = base
            else:
                point = with_estate(workdir, {**BASE, dimension: value}, 3, workers)
            actual = point["counts"][dimension if dimension != "events" else "events"]
            points.append(
                {
                    dimension: actual,
                    "wall_s_median": point["wall_s_median"],
                    "wall_s_min": point["wall_s_min"],
                    "cpu_s_median": point["cpu_s_median"],
                    "peak_rss_mb_max": point["peak_rss_mb_max"],
                    "lineage_mb": round(point["counts"]["lineage_bytes"] / 1e6, 1),
                    "correct": point["correct"],
                    "phases_s": point["phases_s_of_fastest"],
                }
            )
            print(dimension, points[-1], flush=True)
        wall = slope([(p[dimension], p["wall_s_min"]) for p in points])
        cpu = slope([(p[dimension], p["cpu_s_median"]) for p in points])
        growth[dimension] = {
            "points": points,
            "wall_s_per_1000": round(wall * 1000, 4),
            "cpu_s_per_1000": round(cpu * 1000, 4),
        }
    return growth


if __name__ == "__main__":
    sys.exit(main())
