"""When each part of one full scan starts and ends, in the scan CLI's own process and its forked
lineage worker: what overlaps what on the machine's CPUs.

    python bench/shadow_timeline.py /tmp/estate [--share 0.25]

Runs ``qubinode-recovery scan`` (``cli.main``) on an estate written by ``bench/estate.py``, with the
CLI's steps wrapped to print, on stderr, the wall time since start, the step and the CPU time of the
process printing it (``process_time``: the calling process with its listing threads, or the worker,
whose lines are those of ``read_range`` it prints before the calling process reaches its own range).
``--share``: the calling process's share of the lineage file (``lineage_file._EARLY_SHARE``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

STARTED = time.perf_counter()


def _stamp(step: str) -> None:
    sys.stderr.write(f"{time.perf_counter() - STARTED:7.3f} s  {step:<28} cpu {time.process_time():.3f} s\n")


def _wrap(owner: Any, name: str) -> None:
    real: Callable[..., Any] = getattr(owner, name)
    label = getattr(owner, "__name__", "").rpartition(".")[2] + "." + name

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _stamp(f"{label} start")
        result = real(*args, **kwargs)
        _stamp(f"{label} end")
        return result

    setattr(owner, name, wrapped)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("estate", type=Path)
    parser.add_argument("--share", type=float, default=None)
    args = parser.parse_args()
    from qubinode_recovery_provider import cli, shadow
    from qubinode_recovery_provider.cli import scan as cli_scan
    from qubinode_recovery_provider.shadow import detector, inventory
    from qubinode_recovery_provider.shadow import lineage_file as lf

    _stamp("imported")
    if args.share is not None:
        lf._EARLY_SHARE = args.share
    for owner, name in [
        (lf._Forked, "start"),
        (lf, "_read_range"),
        (lf._Chunk, "from_bytes"),
        (lf, "_merge_chunks"),
        (cli_scan, "check_runs_file"),
        (shadow, "run_scan"),
        (inventory.InventoryListing, "collect"),
        (detector.ShadowErrorDetector, "detect"),
        (detector.ShadowErrorDetector, "prepare"),
    ]:
        if hasattr(owner, name):  # (code from before a step existed)
            _wrap(owner, name)
    argv = ["scan", "--runs-file", str(args.estate / "runs.json")]
    argv += ["--lineage-file", str(args.estate / "events.jsonl")]
    for host in sorted(args.estate.glob("*.xml")):
        argv += ["--libvirt-uri", f"{host.stem}=test://{host.resolve()}"]
    argv += ["--json", "--lineage-workers", "auto"]
    with open(os.devnull, "w") as quiet:
        sys.stdout = quiet
        code = cli.main(argv)
        sys.stdout = sys.__stdout__
    _stamp(f"main returned {code}")


if __name__ == "__main__":
    main()
