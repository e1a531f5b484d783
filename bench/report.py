"""Write docs/benchmarks.md from the measured results in bench/results/*.json.

    python bench/report.py

The numbers on the page are only ever the ones the benchmarks wrote; each section names the command
that made them. Sections whose results file is missing say so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
INTRO = ROOT / "bench" / "benchmarks_intro.md"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def accuracy_section() -> list[str]:
    held, dev = _load("accuracy_heldout.json"), _load("accuracy_dev.json")
    lines = [
        "## Diagnosis accuracy",
        "",
        "Command: `python bench/accuracy.py --split heldout --overlap` (and `--split dev`).",
        "",
    ]
    if held is None:
        return [*lines, "No held-out result yet.", ""]
    lines += [
        "| metric | held-out | development |",
        "|---|---|---|",
        f"| items | {held['n']} | {dev['n'] if dev else '-'} |",
    ]
    for key, label in (
        ("accuracy", "top-1 accuracy"),
        ("macro_f1", "macro-F1"),
        ("unknown_rate", "unknown rate"),
        ("retryable_true_wrong_rate", "wrong `retryable: true` claims"),
        ("retryable_false_wrong_rate", "wrong `retryable: false` claims"),
        ("ece", "expected calibration error"),
    ):
        dev_value = f"{dev[key]:.3f}" if dev else "-"
        lines.append(f"| {label} | {held[key]:.3f} | {dev_value} |")
    lines.append(
        f"| `retryable: true` claims made | {held['retryable_true_claims']} | "
        f"{dev['retryable_true_claims'] if dev else '-'} |"
    )
    if held.get("overlap_items") is not None:
        lines.append(f"| held-out items sharing a line with a pattern example | {held['overlap_items']} | |")
        lines.append(f"| accuracy without those | {held['accuracy_without_overlap']:.3f} | |")
    lines += ["", "Recall per category (held-out):", "", "| category | recall |", "|---|---|"]
    lines += [f"| {cat} | {value:.3f} |" for cat, value in sorted(held["recall"].items())]
    return [*lines, ""]


def analyzer_section() -> list[str]:
    data = _load("analyzer.json")
    lines = ["## Analyzer speed and memory", "", "Command: `python bench/bench_analyzer.py`.", ""]
    if data is None:
        return [*lines, "No result yet.", ""]
    lines += [
        f"{data['patterns']} patterns, Python {data['python']}. Baseline: the reference implementation's ten "
        "regexes, lower-cased, each `re.search`ed over the lower-cased text in turn.",
        "",
        "| input | analyzer p50 | analyzer p95 | baseline p50 | speed-up | analyzer ms per MB |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in data["sizes"].items():
        cells = [
            f"{name} ({row['bytes']:,} bytes)",
            f"{row['analyzer_p50_ms']:.3f} ms",
            f"{row['analyzer_p95_ms']:.3f} ms",
            f"{row['baseline_p50_ms']:.3f} ms",
            f"{row['speedup_vs_baseline']:.1f}x",
            f"{row['analyzer_ms_per_mb']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    alternatives = data["sizes"].get("1MB", {}).get("alternatives_ms", {})
    if alternatives:
        lines += [
            "",
            "Matching techniques over the full library on the 1 MB log (median ms):",
            "",
            "| technique | ms |",
            "|---|---|",
        ]
        lines += [
            f"| {k} | {v:.1f} |" if isinstance(v, float) else f"| {k} | {v} |"
            for k, v in alternatives.items()
        ]
    mem = data.get("memory_100MB")
    if mem:
        lines += [
            "",
            f"100 MB log, streamed from disk: {mem['seconds']:.2f} s; peak RSS {mem['rss_peak_mb']:.0f} MB "
            f"(after imports {mem['rss_before_mb']:.0f} MB); peak Python allocations during the scan "
            f"{mem.get('python_allocations_peak_mb', float('nan')):.1f} MB.",
        ]
    return [*lines, ""]


def notifier_section() -> list[str]:
    data = _load("notifier.json")
    lines = [
        "## Failure notifier and retry policy overhead",
        "",
        "Command: `python bench/bench_notifier.py` (SQLite ledger, realistic log tail, no LLM).",
        "",
    ]
    if data is None:
        return [*lines, "No result yet.", ""]
    lines += ["| what | median | p95 | n |", "|---|---|---|---|"]
    labels = {
        "notifier_warm": "notifier per failure (worker process already warm)",
        "policy_warm": "retry policy decision (warm)",
        "notifier_cold": "notifier, first failure in a fresh task process",
        "policy_cold": "retry policy, first decision in a fresh task process",
        "notifier_after_policy_cold": "notifier after the policy in the same fresh process",
        "policy_then_notifier_cold": "policy then notifier, fresh process (what one failing attempt pays)",
        "large_log": "reading the tail of a 64 MB attempt log",
    }
    for key, label in labels.items():
        row = data.get(key)
        if row:
            lines.append(f"| {label} | {row['median_ms']:.1f} ms | {row['p95_ms']:.1f} ms | {row['n']} |")
    steps = data.get("steps_warm", {})
    if steps:
        lines += [
            "",
            "Where the warm notifier's time goes (median): "
            + ", ".join(f"{k} {v['median_ms']:.1f} ms" for k, v in steps.items())
            + ".",
        ]
    load = data.get("load_average_at_start")
    if load:
        lines += ["", f"Load average when it started: {load[0]:.2f} on {data.get('cpu_count')} CPUs."]
    return [*lines, ""]


def shadow_section() -> list[str]:
    data = _load("shadow.json")
    lines = [
        "## Shadow scan at scale",
        "",
        f"Command: `{data['command'] if data else 'python bench/bench_shadow.py'}`.",
        "",
    ]
    if data is None:
        return [*lines, "No result yet.", ""]
    base = data["base"]
    sizes, counts = base["sizes"], base["counts"]
    lines += [
        f"Estate: {sizes['runs']:,} finished runs ({counts['task_instances']:,} task instances), "
        f"{sizes['events']:,} OpenLineage events ({counts['lineage_bytes'] / 1e6:.0f} MB of JSON lines), "
        f"{sizes['domains']:,} libvirt domains over {sizes['hosts']} hosts, all from local files and the "
        "libvirt test driver, end to end through the CLI.",
        "",
        f"- wall time: median {base['wall_s_median']:.2f} s, best {base['wall_s_min']:.2f} s "
        f"(budget {data['budget_s']:.0f} s: {'met' if data['within_budget'] else 'NOT met'})",
        f"- CPU time {base['cpu_s_median']:.2f} s; peak RSS {base['peak_rss_mb_max']:.0f} MB",
        f"- findings: every planted finding found and nothing else: {'yes' if base['correct'] else 'NO'}",
        "- phases of the fastest run: "
        + ", ".join(f"{k} {v:.2f} s" for k, v in base["phases_s_of_fastest"].items()),
        "",
        "How the time grows with each dimension (the others at the base size):",
        "",
        "| dimension | value | wall median (s) | peak RSS (MB) |",
        "|---|---|---|---|",
    ]
    for dimension, info in data["growth"].items():
        for point in info["points"]:
            value = point.get(dimension, point.get(dimension.rstrip("s"), "?"))
            lines.append(
                f"| {dimension} | {value} | {point['wall_s_median']:.2f} | {point['peak_rss_mb_max']:.0f} |"
            )
    return [*lines, ""]


def render() -> str:
    intro = INTRO.read_text().rstrip("\n").splitlines() if INTRO.exists() else ["# Benchmarks", ""]
    lines = [*intro, ""]
    lines += accuracy_section()
    lines += analyzer_section()
    lines += notifier_section()
    lines += shadow_section()
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    PAGE.write_text(render())
    sys.exit(0)
