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


def generic_section(title: str, name: str, command: str) -> list[str]:
    data = _load(name)
    lines = [f"## {title}", "", f"Command: `{command}`.", ""]
    if data is None:
        return [*lines, "No result yet.", ""]
    summary = data.get("summary_markdown")
    if summary:
        return [*lines, summary, ""]
    return [*lines, "```json", json.dumps(data, indent=2)[:4000], "```", ""]


def render() -> str:
    intro = INTRO.read_text().rstrip("\n").splitlines() if INTRO.exists() else ["# Benchmarks", ""]
    lines = [*intro, ""]
    lines += accuracy_section()
    lines += analyzer_section()
    lines += generic_section("Failure notifier overhead", "notifier.json", "python bench/bench_notifier.py")
    lines += generic_section("Shadow scan at scale", "shadow.json", "python bench/bench_shadow.py")
    return "\n".join(lines).rstrip("\n") + "\n"


if __name__ == "__main__":
    PAGE.write_text(render())
    sys.exit(0)
