"""Start-up: what a user waits for before the first answer, each measured as a whole process.

    python bench/bench_startup.py            # every section -> bench/results/startup.json
    python bench/bench_startup.py --quick    # fewer runs
    python bench/bench_startup.py --sections one_line,batch     # some sections only
    git worktree add /tmp/startup-before a3abdc4     # the code before this work, then:
    python bench/bench_startup.py --sections before_after --before-tree /tmp/startup-before

Sections:

- ``one_line``: ``qubinode-recovery diagnose --error "No space left on device"`` (and the same text on
  stdin, ``--log-file -``), the console script as installed, median of N whole-process runs (wall
  clock and CPU time of the child), with a *warm* cache (the pattern library and the Hyperscan
  database were cached by an earlier run on this host: every later run) and a *cold* one (an empty
  cache folder: what the first run on a host pays, including the Hyperscan compile). Beside them the
  floors no code of ours can go under: ``python -c pass`` with the venv (its ``site`` imports the
  editable install's finder), ``python -I -S -c pass``, and ``python -c "import pydantic"`` (the models
  the CLI prints are pydantic models).
- ``batch``: ``diagnose --batch`` over 20 noisy logs of 1 MB (one JSON line each, the cause two thirds
  down) against the reference's ten regexes run the same way as a whole process (a Python process
  that reads the same file and runs its ten lower-cased regexes over each lower-cased text), the two
  alternated, median of N each; the ratio is the reference's median over ours.
- ``--before-tree DIR``: the one-line and the batch diagnosis with the code of another checkout and
  with this one, each imported from its own tree (the editable install's finder is taken out of the
  child's import system), alternated.
- ``task_path`` with ``--before-tree DIR``: the same fresh-task-process runs with that checkout's code
  and with this one's, alternated (:func:`task_path_before_after`).
- ``task_path``: the fresh-task-process figures of ``bench/bench_notifier.py`` (its ``cold`` runs:
  Airflow imported before the clock starts, then our modules imported, the first retry-policy
  decision, the notifier); reported with and without the import of our modules, wall clock and CPU
  time of the process (all its threads), beside ``python -c pass`` of the same run.

The package is byte-compiled first (``compileall``), as an installed package is: this machine's
environment sets ``PYTHONDONTWRITEBYTECODE``, which would otherwise make every run compile our
sources again. The machine is shared (2 CPUs, other agents running): the load average is recorded at
the start and end of each section; CPU time of the children is less sensitive to it than wall time.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent
CLI = str(BIN / "qubinode-recovery")
MESSAGE = "No space left on device"
BATCH_ITEMS = 20
BATCH_ITEM_BYTES = 1_000_000

#: The reference's whole-process batch: its ten regexes, lower-cased, over each lower-cased text.
REFERENCE_BATCH = """
import json, re, sys
regexes = [r.lower() for r in json.loads(sys.argv[1])]
with open(sys.argv[2], encoding="utf-8") as handle:
    for line in handle:
        record = json.loads(line)
        text = record["text"].lower()
        found = [rx for rx in regexes if re.search(rx, text)]
        print(json.dumps({"id": record.get("id"), "matches": found}))
"""


def run(args: list[str], env: dict[str, str], stdin: bytes | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one child process (its output discarded; it must exit 0 or 1). The CPU
    time is the child's own resource usage (microseconds; ``os.times`` counts in 10 ms ticks)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _, stderr = proc.communicate(stdin, timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{args[:3]} exited {proc.returncode}: {stderr.decode()[-500:]}")
    return wall, cpu


def summary(samples: list[tuple[float, float]]) -> dict[str, Any]:
    walls = sorted(w for w, _ in samples)
    cpus = sorted(c for _, c in samples)
    return {
        "n": len(samples),
        "wall_median_ms": round(statistics.median(walls) * 1000, 1),
        "wall_min_ms": round(walls[0] * 1000, 1),
        "wall_max_ms": round(walls[-1] * 1000, 1),
        "cpu_median_ms": round(statistics.median(cpus) * 1000, 1),
    }


def child_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__QUBINODE_RECOVERY__")}
    env["QUBINODE_RECOVERY_CACHE_DIR"] = str(cache)
    env["AIRFLOW_HOME"] = str(cache.parent / "airflow_home")  # no airflow.cfg: the defaults
    return env


def load() -> float:
    return round(os.getloadavg()[0], 2)


def one_line(runs: int) -> dict[str, Any]:
    """The one-line diagnosis, warm and cold, beside the interpreter's own floors."""
    result: dict[str, Any] = {"load_average_at_start": load(), "message": MESSAGE}
    with tempfile.TemporaryDirectory(prefix="qrp-startup-") as tmp:
        base = Path(tmp)
        env = child_env(base / "cache")
        floors = {
            "python_pass": [sys.executable, "-c", "pass"],
            "python_isolated_no_site": [sys.executable, "-I", "-S", "-c", "pass"],
            "python_import_pydantic": [
                sys.executable,
                "-c",
                "import pydantic; from pydantic import BaseModel",
            ],
        }
        for name, args in floors.items():
            result[name] = summary([run(args, env) for _ in range(runs)])
        diagnose = [CLI, "diagnose", "--error", MESSAGE]
        stdin = [CLI, "diagnose", "--log-file", "-"]
        run(diagnose, env)  # fills the cache
        warm_error, warm_stdin = [], []
        for _ in range(runs):
            warm_error.append(run(diagnose, env))
            warm_stdin.append(run(stdin, env, MESSAGE.encode()))
        result["diagnose_error_warm"] = summary(warm_error)
        result["diagnose_stdin_warm"] = summary(warm_stdin)
        cold = []
        for index in range(max(3, runs // 4)):
            cold.append(run(diagnose, child_env(base / f"cold-{index}")))
        result["diagnose_error_cold"] = summary(cold)
    result["load_average_at_end"] = load()
    return result


#: Runs the CLI of the checkout ``sys.argv[1]`` (not the editable install's) with ``sys.argv[2:]``.
TREE_CLI = """
import sys
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path.insert(0, sys.argv[1])
import qubinode_recovery_provider
assert qubinode_recovery_provider.__file__.startswith(sys.argv[1]), qubinode_recovery_provider.__file__
from qubinode_recovery_provider.cli import main
sys.exit(main(sys.argv[2:]))
"""


def before_after(before: Path, runs: int) -> dict[str, Any]:
    """The one-line and the batch diagnosis with the code of ``before`` and of this checkout (each
    imported from its own tree, byte-compiled, with a warm cache of its own), alternated."""
    compileall.compile_dir(str(before / "qubinode_recovery_provider"), quiet=1)
    trees = {"before": before.resolve(), "after": ROOT}
    commit = subprocess.run(
        ["git", "-C", str(before), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=30
    ).stdout.strip()
    result: dict[str, Any] = {
        "load_average_at_start": load(),
        "before_tree": str(before),
        "before_commit": commit,
    }
    with tempfile.TemporaryDirectory(prefix="qrp-startup-ba-") as tmp:
        base = Path(tmp)
        batch_path = base / "batch.jsonl"
        write_batch(batch_path)
        commands = {
            "one_line": ["diagnose", "--error", MESSAGE],
            "batch": ["diagnose", "--batch", str(batch_path)],
        }
        samples: dict[str, list[tuple[float, float]]] = {}
        for name, tree in trees.items():
            run([sys.executable, "-c", TREE_CLI, str(tree), *commands["one_line"]], child_env(base / name))
        for index in range(runs):
            order = list(trees) if index % 2 == 0 else list(reversed(trees))
            for name in order:
                for command, args in commands.items():
                    argv = [sys.executable, "-c", TREE_CLI, str(trees[name]), *args]
                    samples.setdefault(f"{command}_{name}", []).append(run(argv, child_env(base / name)))
    result.update({key: summary(values) for key, values in samples.items()})
    result["load_average_at_end"] = load()
    return result


def write_batch(path: Path) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_analyzer import noisy_log

    with path.open("w", encoding="utf-8") as handle:
        for index in range(BATCH_ITEMS):
            record = {"id": f"log-{index}", "text": noisy_log(BATCH_ITEM_BYTES, seed=100 + index)}
            handle.write(json.dumps(record) + "\n")


def batch(runs: int) -> dict[str, Any]:
    """Whole-process ``diagnose --batch`` against the reference's regexes, alternated."""
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_analyzer import SEED_REGEXES

    result: dict[str, Any] = {
        "load_average_at_start": load(),
        "items": BATCH_ITEMS,
        "item_bytes": BATCH_ITEM_BYTES,
    }
    with tempfile.TemporaryDirectory(prefix="qrp-startup-batch-") as tmp:
        base = Path(tmp)
        env = child_env(base / "cache")
        path = base / "batch.jsonl"
        write_batch(path)
        ours_args = [CLI, "diagnose", "--batch", str(path)]
        reference_args = [sys.executable, "-c", REFERENCE_BATCH, json.dumps(SEED_REGEXES), str(path)]
        run(ours_args, env)  # fills the cache and the page cache
        run(reference_args, env)
        ours, reference = [], []
        for _ in range(runs):
            ours.append(run(ours_args, env))
            reference.append(run(reference_args, env))
    result["ours"] = summary(ours)
    result["reference"] = summary(reference)
    result["ratio_wall"] = round(result["reference"]["wall_median_ms"] / result["ours"]["wall_median_ms"], 2)
    result["ratio_cpu"] = round(result["reference"]["cpu_median_ms"] / result["ours"]["cpu_median_ms"], 2)
    result["load_average_at_end"] = load()
    return result


def task_path(runs: int) -> dict[str, Any]:
    """bench_notifier's fresh-task-process runs, with our modules' import shown apart."""
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_notifier

    started = load()
    with tempfile.TemporaryDirectory(prefix="qrp-startup-task-") as tmp:
        cache = Path(tmp) / "cache"
        run([CLI, "diagnose", "--error", MESSAGE], child_env(cache))  # the host's caches, as after any run
        floor = summary([run([sys.executable, "-c", "pass"], child_env(cache)) for _ in range(10)])
        previous = os.environ.get("QUBINODE_RECOVERY_CACHE_DIR")
        os.environ["QUBINODE_RECOVERY_CACHE_DIR"] = str(cache)
        try:
            out = bench_notifier.cold(runs)
        finally:
            if previous is None:
                os.environ.pop("QUBINODE_RECOVERY_CACHE_DIR", None)
            else:
                os.environ["QUBINODE_RECOVERY_CACHE_DIR"] = previous
    return {"load_average_at_start": started, "python_pass": floor, **out, "load_average_at_end": load()}


def task_path_before_after(before: Path, rounds: int) -> dict[str, Any]:
    """bench_notifier's fresh-task-process runs with the code of ``before`` and of this checkout (each
    child imports its tree's package first on ``PYTHONPATH``; each tree has its own warm cache), two
    fresh processes of each kind per round, the trees alternated; the medians of the per-round medians.
    """
    sys.path.insert(0, str(ROOT / "bench"))
    import bench_notifier

    compileall.compile_dir(str(before / "qubinode_recovery_provider"), quiet=1)
    trees = {"before": before.resolve(), "after": ROOT}
    keys = ("policy_cold", "notifier_after_policy_cold", "notifier_cold")
    per_round: dict[str, list[float]] = {}
    result: dict[str, Any] = {"load_average_at_start": load(), "before_tree": str(before)}
    saved = {
        k: os.environ.get(k) for k in ("QRP_BENCH_CODE_ROOT", "PYTHONPATH", "QUBINODE_RECOVERY_CACHE_DIR")
    }
    with tempfile.TemporaryDirectory(prefix="qrp-startup-task-ba-") as tmp:
        try:
            for index in range(rounds):
                for name in trees if index % 2 == 0 else reversed(list(trees)):
                    tree, cache = trees[name], Path(tmp) / name
                    env = {"QRP_BENCH_CODE_ROOT": str(tree), "PYTHONPATH": str(tree)}
                    if index == 0:  # the host's caches, written by this tree's own CLI
                        run(
                            [sys.executable, "-c", TREE_CLI, str(tree), "diagnose", "--error", MESSAGE],
                            child_env(cache),
                        )
                    os.environ.update({**env, "QUBINODE_RECOVERY_CACHE_DIR": str(cache)})
                    out = bench_notifier.cold(2)
                    for key in keys:
                        per_round.setdefault(f"{key}_{name}", []).append(out[key]["median_ms"])
                        cpu = out["cpu_ms_median"].get(key)
                        if cpu is not None:
                            per_round.setdefault(f"{key}_cpu_{name}", []).append(cpu)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    result["median_of_round_medians_ms"] = {k: round(statistics.median(v), 1) for k, v in per_round.items()}
    result["rounds"] = rounds
    result["load_average_at_end"] = load()
    return result


SECTIONS = ("one_line", "batch", "task_path")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {SECTIONS}")
    parser.add_argument("--before-tree", type=Path, metavar="DIR", help="also time this checkout's code")
    args = parser.parse_args()
    compileall.compile_dir(str(ROOT / "qubinode_recovery_provider"), quiet=1)
    path = RESULTS / "startup.json"
    result: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    result.update(
        {"python": platform.python_version(), "machine": platform.machine(), "cpu_count": os.cpu_count()}
    )
    sections = set(args.sections.split(","))
    if "one_line" in sections:
        result["one_line"] = one_line(6 if args.quick else 20)
        print(json.dumps(result["one_line"], indent=2), file=sys.stderr)
    if "batch" in sections:
        result["batch"] = batch(3 if args.quick else 7)
        print(json.dumps(result["batch"], indent=2), file=sys.stderr)
    if "task_path" in sections:
        result["task_path"] = task_path(3 if args.quick else 11)
        print(json.dumps(result["task_path"], indent=2), file=sys.stderr)
    if args.before_tree is not None and sections & {"one_line", "batch", "before_after"}:
        result["before_after"] = before_after(args.before_tree, 4 if args.quick else 10)
        print(json.dumps(result["before_after"], indent=2), file=sys.stderr)
    if args.before_tree is not None and "task_path" in sections:
        result["task_path_before_after"] = task_path_before_after(args.before_tree, 2 if args.quick else 6)
        print(json.dumps(result["task_path_before_after"], indent=2), file=sys.stderr)
    result["command"] = " ".join(["python", "bench/bench_startup.py", *sys.argv[1:]])
    RESULTS.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
