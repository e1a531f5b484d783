"""How much a diagnosis tells a person: services, actions and commands printed per diagnosis.

For every item of one corpus side, the diagnosis is printed as ``qubinode-recovery diagnose`` prints it
(``cli/render.py``) and its plan as the GitHub issue body shows it (``escalation_text``); the script
counts the services, recommended actions and commands in the first, and the manual fix's check and fix
steps in the second, and reports the mean and the maximum of each.

    python bench/bench_output.py                      # this tree, the training side
    python bench/bench_output.py --code /tmp/before   # another tree's package (e.g. ``git archive``)

Before/after in ``docs/benchmarks.md``: ``git archive a3abdc4 qubinode_recovery_provider | tar -x -C
/tmp/before`` then both commands.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
_STEP = re.compile(r"^\d+\. (Check|Fix): ")
METRICS = ("services", "actions", "commands", "issue_checks", "issue_fixes")


def printed_counts(report: str) -> dict[str, int]:
    """Services, actions and commands in a printed diagnosis."""
    counts = {"services": 0, "actions": 0, "commands": 0}
    section = ""
    for line in report.splitlines():
        if line.startswith("Services:"):
            counts["services"] = len(line.split(":", 1)[1].split(","))
        elif not line.startswith("  "):
            section = line
        elif section == "Recommended actions:" and line.startswith("  - "):
            counts["actions"] += 1
        elif line.startswith("  $ "):
            counts["commands"] += 1
    return counts


def issue_counts(body: str) -> dict[str, int]:
    """Check and fix steps of the manual fix in an issue body."""
    counts = {"issue_checks": 0, "issue_fixes": 0}
    inside = False
    for line in body.splitlines():
        if line.startswith("## ") or line.startswith("### "):
            inside = "by hand" in line
        elif inside and (match := _STEP.match(line)):
            counts["issue_checks" if match.group(1) == "Check" else "issue_fixes"] += 1
    return counts


def measure(items: list[dict[str, Any]]) -> dict[str, Any]:
    from qubinode_recovery_provider.cli.render import render_diagnosis
    from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
    from qubinode_recovery_provider.escalation.outbox import escalation_text
    from qubinode_recovery_provider.recovery import RecoveryPlanner

    analyzer = FailureAnalyzer(PatternLibrary.load(), use_llm=False)
    planner = RecoveryPlanner(events=None)
    rows = []
    for item in items:
        diagnosis = analyzer.analyze(item["text"])
        _, body = escalation_text(planner.plan_recovery(diagnosis), "bench")
        rows.append({**printed_counts(render_diagnosis(diagnosis)), **issue_counts(body)})
    return {
        "items": len(rows),
        **{
            name: {
                "mean": round(statistics.fmean(r[name] for r in rows), 2),
                "max": max(r[name] for r in rows),
            }
            for name in METRICS
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", default="train", help="corpus side (bench/corpus.py; default train)")
    parser.add_argument(
        "--code", type=Path, help="the directory holding the qubinode_recovery_provider to measure"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args()
    sys.path.insert(0, str(args.code.resolve() if args.code else ROOT))
    sys.path.insert(1, str(ROOT))
    from bench.corpus import load

    result = {"split": args.split, "code": str(args.code or ROOT), **measure(load(args.split))}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['items']} items of the {args.split} side, code from {result['code']}")
    print("| printed per diagnosis | mean | max |")
    print("|---|---|---|")
    for name in METRICS:
        print(f"| {name} | {result[name]['mean']} | {result[name]['max']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
