"""Render the tables of every benchmark from the measured results in bench/results/*.json.

    python bench/report.py [--output PATH]

It writes ``bench/results/report.md`` (or ``PATH``), never ``docs/benchmarks.md``: that page also holds
hand-written before/after comparisons and measurement notes that no results file carries, so its tables
are copied from this rendering by hand. The numbers rendered are only ever the ones the benchmarks
wrote; each section names the command that made them. Sections whose results file is missing say so.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
OUTPUT = RESULTS / "report.md"
INTRO = ROOT / "bench" / "benchmarks_intro.md"


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(cells) + " |" for cells in rows),
    ]


_ACCURACY_SIDES = (
    ("heldout_unseen", "held-out, unseen sources"),
    ("heldout", "whole held-out"),
    ("heldout_seen", "held-out, seen sources"),
    ("train_cv", "train, grouped CV"),
)
_ACCURACY_ROWS = (
    ("accuracy", "**top-1 accuracy**"),
    ("macro_f1", "macro-F1"),
    ("unknown_rate", "unknown rate"),
    ("configuration_predicted_share", "`configuration` share of predictions"),
    ("configuration_label_share", "`configuration` share of labels"),
    ("retryable_true_wrong_rate", "wrong `retryable: true` claims"),
    ("retryable_false_wrong_rate", "wrong `retryable: false` claims"),
    ("retryable_true_contradicted_rate", "contradicted `retryable: true` claims (label false)"),
    ("retryable_false_contradicted_rate", "contradicted `retryable: false` claims (label true)"),
    ("ece", "expected calibration error"),
)


def accuracy_section() -> list[str]:
    data = _load("accuracy.json")
    lines = [
        "## Diagnosis accuracy",
        "",
        "Command: `python bench/accuracy.py --overlap` (after `python bench/corpus.py`, "
        "`python scripts/train_model.py` and `python bench/accuracy.py --fit`). Each cell: patterns + "
        "learned model / patterns alone.",
        "",
    ]
    if data is None:
        return [*lines, "No result yet.", ""]
    sides = data["sides"]
    header = ["metric"] + [
        f"{label} ({sides[name]['patterns_and_model']['n']})" for name, label in _ACCURACY_SIDES
    ]
    rows = []
    for key, label in _ACCURACY_ROWS:
        rows.append([label] + [_pair(sides[name], key, "{:.3f}") for name, _ in _ACCURACY_SIDES])
    for key, label in (
        ("retryable_true_claims", "`retryable: true` claims made"),
        ("retryable_false_claims", "`retryable: false` claims made"),
        ("decided_by_model", "diagnoses decided by the model"),
    ):
        rows.append([label] + [_pair(sides[name], key, "{}") for name, _ in _ACCURACY_SIDES])
    lines += _table(header, rows)
    overlap = [(label, sides[name]) for name, label in _ACCURACY_SIDES if "overlap_items" in sides[name]]
    if overlap:
        lines += [
            "",
            "Held-out items sharing a line with a pattern example, and the accuracy (with the model) "
            "without them: "
            + "; ".join(
                f"{label} {side['overlap_items']}, {side['accuracy_without_overlap']:.3f}"
                for label, side in overlap
            )
            + ".",
        ]
    recall_rows = []
    for cat in sorted(sides["heldout_unseen"]["patterns_and_model"]["recall"]):
        recall_rows.append(
            [cat] + [_pair(sides[name], "recall", "{:.3f}", cat) for name, _ in _ACCURACY_SIDES]
        )
    lines += ["", "Recall per category:", ""]
    lines += _table(["category"] + [label for _, label in _ACCURACY_SIDES], recall_rows)
    lines += ["", *_targets(sides), "", *_model_lines(data)]
    return [*lines, ""]


def _targets(sides: dict[str, Any]) -> list[str]:
    """Issue 14's targets against the figures with the model."""
    unseen, whole = sides["heldout_unseen"]["patterns_and_model"], sides["heldout"]["patterns_and_model"]
    checks = [
        ("top-1 on unseen sources", unseen["accuracy"], ">=", 0.85),
        ("top-1 on the whole held-out side", whole["accuracy"], ">=", 0.90),
        ("wrong `retryable: true` (whole held-out)", whole["retryable_true_wrong_rate"], "<=", 0.10),
        ("wrong `retryable: false` (whole held-out)", whole["retryable_false_wrong_rate"], "<=", 0.05),
        ("ECE (whole held-out)", whole["ece"], "<=", 0.08),
    ]
    cells = []
    for label, value, op, target in checks:
        met = value >= target if op == ">=" else value <= target
        cells.append(
            f"{label} {value:.3f}{_claim_counts(whole, label)} (target "
            f"{op.replace('>=', '≥').replace('<=', '≤')} {target}: {'met' if met else 'not met'})"
        )
    return [
        "Targets of issue 14: " + "; ".join(cells) + ". The retry targets are judged on the strict "
        "count (a claim is wrong whenever its label differs, `null` included); the contradicted rows "
        "count only claims whose label says the opposite."
    ]


def _claim_counts(side: dict[str, Any], label: str) -> str:
    """`` (10 of 34)`` after a retry-claim target: wrong claims of claims made."""
    for said in ("true", "false"):
        if f"`retryable: {said}`" in label and f"retryable_{said}_wrong" in side:
            return f" ({side[f'retryable_{said}_wrong']} of {side[f'retryable_{said}_claims']})"
    return ""


def _pair(side: dict[str, Any], key: str, fmt: str, sub: str | None = None) -> str:
    values = []
    for variant in ("patterns_and_model", "patterns_only"):
        value = side[variant].get(key)
        value = value.get(sub) if sub is not None and value is not None else value
        values.append("-" if value is None else fmt.format(value))
    return " / ".join(values)


def _model_lines(data: dict[str, Any]) -> list[str]:
    cal, model, cost = data.get("calibration", {}), data.get("model", {}), _load("model.json")
    trained = model.get("trained_on", {})
    examples = trained.get("pattern_examples")
    chosen_on = ", ".join(f"`{p}`" for p in data.get("thresholds_chosen_on", []))
    lines = [
        f"The learned model: {model.get('params')}, trained on {trained.get('items')} training items"
        + (f" and {examples} pattern examples" if examples else "")
        + f". It is asked when the pattern confidence is below {cal.get('consult_below')} (or no pattern "
        f"names a cause); it names the cause no pattern named from a probability of {cal.get('decide_from')}"
        + (
            f", and replaces the cause of an unsure pattern diagnosis of more than one line from "
            f"{cal.get('overrule_from')}"
            if cal.get("overrule_from", 1.01) <= 1
            else ""
        )
        + "; thresholds (the best out-of-fold accuracy on the training items of the collection batches no "
        f"pattern was written from{': ' + chosen_on if chosen_on else ''}) and the joint confidence "
        "fitted on out-of-fold verdicts of the training side (`calibration.json`).",
    ]
    search = _load("model_search.json")
    if search:
        lines += [
            "",
            "The model was chosen by grouped 5-fold cross-validation on the training side "
            f"({search['items']} items; `python scripts/train_model.py --search`, "
            "`bench/results/model_search.json`): top-1 of the model alone, folds split by source, on all "
            f"training items and on the {search.get('fresh_items', '?')} of the batches no pattern was "
            "written from. The candidates are within about one standard error of each other (0.011 on all "
            "items, 0.015 on those batches); the shipped one is among the smallest files.",
            "",
            *_table(
                ["candidate", "grouped-CV top-1", "those batches", "file KiB"],
                [
                    [
                        c["params"] + (" (shipped)" if c["params"] == search["shipped"] else ""),
                        f"{c['grouped_cv_top1']:.3f}",
                        f"{c['grouped_cv_top1_fresh']:.3f}" if "grouped_cv_top1_fresh" in c else "-",
                        str(c["kib"]),
                    ]
                    for c in search["candidates"]
                ],
            ),
        ]
    if cost:
        lines += [
            "",
            f"Its cost (`python bench/bench_model.py`, `bench/results/model.json`): a "
            f"{cost['file_bytes'] / 1024:.0f} KiB file ({cost['buckets']:,} feature buckets), loaded "
            f"in {cost['load_ms_median']:.1f} ms (median of 20); a verdict takes "
            f"{cost['verdict_us_median']:,} µs "
            f"median, {cost['verdict_us_p95']:,} µs p95 over the {cost['items']} training texts, and "
            f"{cost['verdict_1mb_log_ms_median']:.1f} ms on a 1 MB log (it reads the last 16 KiB). Measured "
            "with other work running on the machine.",
        ]
    return lines


def analyzer_section() -> list[str]:
    data = _load("analyzer.json")
    lines = [
        "## Analyzer speed and memory",
        "",
        "Command: `python bench/bench_analyzer.py` (every section below; `--sections sizes`, `memory`, "
        "`adversarial` or `large_pack` runs one).",
        "",
    ]
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
    return [
        *lines,
        "",
        *adversarial_lines(data.get("adversarial")),
        *large_pack_lines(data.get("large_pack")),
    ]


def adversarial_lines(rows: dict[str, Any] | None) -> list[str]:
    """The analyzer on the hostile inputs of ``tests/data/adversarial/make.py``."""
    if not rows:
        return []
    lines = [
        "### Hostile inputs",
        "",
        "Command: `python bench/bench_analyzer.py --sections adversarial`. The inputs are built by "
        "`tests/data/adversarial/make.py` (the tests hold each to a 2 s bound; these are the actual times): "
        "one analysis of each, median of 3 runs, with the shipped library, except the last row, which "
        "loads only a user pack holding the backtracking-prone `Failure: (a+)+$`.",
        "",
        "| input | bytes | median | root cause |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {name} | {row['bytes']:,} | {row['seconds_p50'] * 1000:.1f} ms | {row['root_cause']} |"
        for name, row in rows.items()
    ]
    return [*lines, ""]


def large_pack_lines(data: dict[str, Any] | None) -> list[str]:
    """Loading a generated pack of many patterns, with an empty cache and from the cache."""
    if not data:
        return []
    lines = [
        "### A pack of 20,000 patterns",
        "",
        "Command: `python bench/bench_analyzer.py --sections large_pack`. A generated pack of "
        f"{data['patterns']:,} patterns ({data['pack_file_mb']:.1f} MB of YAML) next to the shipped ones, "
        "each load in a fresh process: first with an empty pattern cache (YAML, validation, RE2 "
        "verification, Hyperscan compile), then with the cache the first load wrote.",
        "",
        "| load | patterns | library load | prefilter build | first analysis | peak RSS (after imports) |",
        "|---|---|---|---|---|---|",
    ]
    for key, label in (
        ("first_load_empty_cache", "first, empty cache"),
        ("later_load_cached", "later, from the cache"),
    ):
        row = data.get(key)
        if row:
            lines.append(
                f"| {label} | {row['patterns_loaded']:,} | {row['library_load_seconds']:.2f} s | "
                f"{row['prefilter_build_seconds']:.2f} s | {row['first_analysis_seconds'] * 1000:.1f} ms | "
                f"{row['rss_peak_mb']:.0f} MB ({row['rss_before_mb']:.0f} MB) |"
            )
    return [*lines, ""]


def notifier_section() -> list[str]:
    data = _load("notifier.json")
    lines = [
        "## Failure notifier and retry policy overhead",
        "",
        "Command: `python bench/bench_notifier.py` (the ordinary path and the worst case; `--sections "
        "ordinary` or `worst_case` runs one).",
        "",
    ]
    if data is None:
        return [*lines, "No result yet.", ""]
    lines += ordinary_lines(data)
    lines += before_after_lines(data.get("before_after"))
    lines += worst_case_lines(data.get("worst_case"))
    return lines


def ordinary_lines(data: dict[str, Any]) -> list[str]:
    """The ordinary path: a realistic failure, warm and in a fresh process."""
    lines = [
        "### Ordinary path",
        "",
        "Command: `python bench/bench_notifier.py --sections ordinary`. A 500-line JSON-lines attempt log "
        "with the error at its end, a SQLite ledger, default context probes, a local HTTP server standing "
        "in for the Airflow API, no LLM.",
        "",
        "| what | median | p95 | n |",
        "|---|---|---|---|",
    ]
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


def _change(before: float, after: float) -> str:
    return f"{(after / before - 1) * 100:+.0f}%" if before else "-"


def before_after_lines(data: dict[str, Any] | None) -> list[str]:
    """The ordinary path with the code before the failure-path hardening and with the current code."""
    if not data:
        return []
    after = f"`{data['after_commit']}`"
    if data.get("after_has_uncommitted_changes"):
        after += " with uncommitted changes to `qubinode_recovery_provider/`"
    load = data.get("load_average_range")
    tree = data.get("before_tree") or data["command"].split("--before-tree ")[1].split()[0]
    counts = data["counts_per_round"]
    lines = [
        "### Ordinary path, before and after",
        "",
        f"Command: `{data['command']}`, after `git worktree add {tree} {data['before_commit']}` (and "
        f"`git worktree remove {tree}` after it). The same "
        f"measurements with the code of `{data['before_commit']}` (before) and of {after} (after), each "
        "in a child process that imports that checkout's package; the two alternate, "
        f"{data['rounds']} round{'s' if data['rounds'] != 1 else ''} each ({counts['notifier_warm']} warm "
        "notifier calls, "
        f"{counts['policy_warm']} warm policy decisions, {counts.get('notifier_steps', 0)} timings of the "
        f"notifier's steps, {counts.get('large_log_reads', 'the')} reads of the 64 MB log and "
        f"{counts['fresh_processes']} fresh processes of "
        "each kind per round). *Before* and *after* are the medians of the per-round medians; the ranges "
        "go from the lowest to the highest per-round median; the last column compares the lowest ones "
        "(the rounds least slowed down by other work on the machine). Differences of about 10% either "
        "way are within what repeated runs of this comparison have shown on a busy machine."
        + (f" Load average as each child started: {load[0]:.2f} to {load[1]:.2f}." if load else ""),
        "",
        "| what | before | after | change | before, range | after, range | change, lowest |",
        "|---|---|---|---|---|---|---|",
    ]
    labels = {
        "notifier_warm": "notifier per failure (warm)",
        "policy_warm": "retry policy decision (warm)",
        "notifier_cold": "notifier, fresh process",
        "policy_cold": "retry policy, fresh process",
        "notifier_after_policy_cold": "notifier after the policy, fresh process",
        "policy_then_notifier_cold": "policy then notifier, fresh process",
        "large_log": "reading the tail of a 64 MB attempt log",
        "steps_warm.read_log_and_redact": "warm notifier step: read and redact the log tail",
        "steps_warm.collect_context": "warm notifier step: context probes",
        "steps_warm.analyze": "warm notifier step: analysis",
        "steps_warm.record_failure": "warm notifier step: ledger write",
    }
    for key, label in labels.items():
        row = data.get(key)
        if not row:
            continue
        b, a = row["before_median_ms"], row["after_median_ms"]
        b_low, a_low = min(row["before_rounds_ms"]), min(row["after_rounds_ms"])
        lines.append(
            f"| {label} | {b:.1f} ms | {a:.1f} ms | {_change(b, a)} | "
            f"{b_low:.1f}-{max(row['before_rounds_ms']):.1f} ms | "
            f"{a_low:.1f}-{max(row['after_rounds_ms']):.1f} ms | {_change(b_low, a_low)} |"
        )
    return [*lines, ""]


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def worst_case_lines(data: dict[str, Any] | None) -> list[str]:
    """The hostile inputs through the notifier and the policy."""
    if not data:
        return []
    lines = [
        "### Worst case: hostile attempt logs",
        "",
        f"Command: `{data['command']}`. Each input of `tests/data/adversarial/make.py` (and a hex dump "
        "holding the word `key`, and a line of `xN_key=vN` assignments, both redaction stressors) is the "
        "error record of the failed attempt's JSON-lines log, with a fresh SQLite ledger for each run. "
        f"`RecoveryNotifier(budget_seconds={data['notifier_budget_s']:g}, trigger_recovery=False)` gets the "
        "input's first 100,000 characters as the exception text; "
        f"`DiagnosisRetryPolicy(budget_seconds={data['policy_budget_s']:g})` gets a BashOperator's "
        f"exit-code message, so the evidence is in the log. Median (and slowest) of {data['repeats']} runs; "
        "the pattern library is loaded before the clock starts. *Recorded* is the notifier's "
        "`record_status`, and whether the ledger then holds the attempt exactly once.",
        "",
    ]
    header = "input, bytes, notifier, recorded, notifier budget ran out, root cause, policy, "
    header += "policy decision, policy budget ran out"
    lines += _table(
        header.split(", "),
        [
            [
                name,
                f"{row['bytes']:,}",
                f"{row['notifier_s_median'] * 1000:.0f} ms ({row['notifier_s_max'] * 1000:.0f})",
                f"{row['record_status']}, once: {_yes(row['recorded_exactly_once'])}",
                _yes(row["notifier_timed_out"]),
                row["root_cause"],
                f"{row['policy_s_median'] * 1000:.0f} ms ({row['policy_s_max'] * 1000:.0f})",
                row["policy_action"],
                _yes(row["policy_timed_out"]),
            ]
            for name, row in data["inputs"].items()
        ],
    )
    late = max(row["background_s_max"] for row in data["inputs"].values())
    load = data.get("load_average_at_start")
    lines += [
        "",
        f"Longest a notifier or policy thread ran on after its call returned: {late * 1000:.0f} ms."
        + (f" Load average when it started: {load[0]:.2f}." if load else ""),
    ]
    return [*lines, ""]


def _ms(row: dict[str, Any]) -> list[str]:
    """Wall median (min-max) and CPU median of a ``bench_startup`` row."""
    return [
        f"{row['wall_median_ms']:.0f} ms ({row['wall_min_ms']:.0f}-{row['wall_max_ms']:.0f})",
        f"{row['cpu_median_ms']:.0f} ms",
    ]


def startup_section() -> list[str]:
    data = _load("startup.json")
    lines = [
        "## Start-up",
        "",
        "Command: `python bench/bench_startup.py` (`--sections one_line`, `batch` or `task_path` runs one). "
        "Whole processes, the package byte-compiled first as an installed one is; wall clock and the "
        "child's CPU time (less sensitive to other work on the machine), median of N runs.",
        "",
    ]
    if data is None:
        return [*lines, "No result yet.", ""]
    one = data.get("one_line")
    if one:
        labels = {
            "python_isolated_no_site": "`python -I -S -c pass` (the interpreter alone)",
            "python_pass": "`python -c pass` (with the venv's `site`)",
            "python_import_pydantic": "`python -c 'from pydantic import BaseModel'`",
            "diagnose_error_warm": f"`qubinode-recovery diagnose --error '{one['message']}'`, warm cache",
            "diagnose_stdin_warm": "the same text on stdin (`--log-file -`), warm cache",
            "diagnose_error_cold": "`diagnose --error`, empty cache (first run on a host)",
        }
        rows = [[label, *_ms(one[key]), str(one[key]["n"])] for key, label in labels.items() if key in one]
        lines += _table(["process", "wall median (min-max)", "CPU median", "runs"], rows)
        lines += [
            "",
            f"Load average {one['load_average_at_start']} at the start, {one['load_average_at_end']} at the "
            "end (2 CPUs).",
            "",
        ]
    batch = data.get("batch")
    if batch:
        lines += [
            f"`diagnose --batch` over {batch['items']} logs of {batch['item_bytes'] / 1e6:.0f} MB against "
            "the reference's ten regexes, each a whole process, alternated:",
            "",
        ]
        rows = [
            ["`qubinode-recovery diagnose --batch`", *_ms(batch["ours"])],
            ["the reference's ten regexes (Python process)", *_ms(batch["reference"])],
        ]
        lines += _table(["process", "wall median (min-max)", "CPU median"], rows)
        lines += [
            "",
            f"Ratio (reference / ours): {batch['ratio_wall']}x wall, {batch['ratio_cpu']}x CPU. Load average "
            f"{batch['load_average_at_start']} at the start, {batch['load_average_at_end']} at the end.",
            "",
        ]
    both = data.get("before_after")
    if both:
        lines += [
            f"Before and after (`--before-tree`: the code of commit {both.get('before_commit', '?')} "
            "against this checkout's), each imported from its own tree, alternated:",
            "",
        ]
        rows = [
            [label, *_ms(both[f"{key}_before"]), *_ms(both[f"{key}_after"])]
            for key, label in (("one_line", "one-line `diagnose --error`"), ("batch", "`diagnose --batch`"))
        ]
        lines += _table(["process", "before, wall", "before, CPU", "after, wall", "after, CPU"], rows)
        lines += [
            "",
            f"Load average {both['load_average_at_start']} at the start, {both['load_average_at_end']} at "
            "the end.",
            "",
        ]
    task = data.get("task_path")
    if task:
        lines += [
            "A fresh task process (`bench/bench_notifier.py`'s fresh-process runs: Airflow's Task SDK "
            "imported before the clock starts, the host's caches warm):",
            "",
        ]
        rows = [
            ["importing our notifier and policy modules", f"{task['import_ms_median']:.0f} ms"],
            ["first retry-policy decision", f"{task['policy_cold']['median_ms']:.0f} ms"],
            ["notifier after the policy", f"{task['notifier_after_policy_cold']['median_ms']:.0f} ms"],
            ["notifier alone (first failure)", f"{task['notifier_cold']['median_ms']:.0f} ms"],
        ]
        lines += _table(["step", "median"], rows)
        lines += [
            "",
            f"{task['policy_cold']['n']} fresh processes each; load average {task['load_average_at_start']} "
            f"at the start, {task['load_average_at_end']} at the end.",
            "",
        ]
    return lines


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


def _old_cell(points: list[dict[str, Any]]) -> str:
    done = [p for p in points if p["seconds"] is not None]
    parts = [f"{p['seconds']:.2f} s at {p['bytes']:,} bytes" for p in done[-2:]]
    if len(points) > len(done):
        parts.append(f"over {points[-1]['timeout_s']:.0f} s at {points[-1]['bytes']:,} bytes (stopped)")
    return "; ".join(parts) or "-"


def redaction_section() -> list[str]:
    data = _load("redaction.json")
    lines = [
        "## Redaction",
        "",
        f"Command: `{data['command'] if data else 'python bench/bench_redaction.py'}`.",
        "",
    ]
    if data is None:
        return [*lines, "No result yet.", ""]
    if data.get("stale"):  # the code changed after this run; a new run of the benchmark drops it
        lines += [f"**Out of date:** {data['stale']}", ""]
    lines += [
        f"{data['rules']} RE2 rules (google-re2 {data['google_re2']}), searched in windows of "
        f"{data['window_bytes'] // 1024} KiB overlapping by {data['overlap_bytes'] // 1024} KiB, at most "
        f"{data['max_hits']} hits per rule and window; Python {data['python']}. Old: the Python `re` rules "
        "used before, in a child process with a time limit, on an eighth, a quarter, a half and all of "
        "each input, stopping at the first size that did not finish.",
        "",
    ]
    lines += _table(
        ["input", "bytes", "new, median", "new, ms per MB", "old rules (last two sizes)"],
        [
            [
                name,
                f"{row['bytes']:,}",
                f"{row['new_ms_median']:.1f} ms",
                f"{row['new_ms_per_mb']:.1f}",
                _old_cell(row["old"]),
            ]
            for name, row in data["inputs"].items()
        ],
    )
    leaks = [name for name, row in data["inputs"].items() if row.get("secret_left")]
    lines += [
        "",
        "Secrets left in the new output: " + (", ".join(leaks) if leaks else "none") + ". The old rules did "
        "not look for private-key body lines without their BEGIN line: their time on the key-body input is "
        "that of finding nothing.",
    ]
    return [*lines, ""]


def task_log_capture_section() -> list[str]:
    data = _load("task_log_capture.json")
    lines = ["## Task log capture", "", "Command: `python bench/bench_task_log_capture.py`.", ""]
    if data is None:
        return [*lines, "No result yet.", ""]
    machine = data["machine"]
    lines += [
        "What keeping the task's log records in memory costs each log call: logging set up as in a task "
        "process under the supervisor (JSON records to `/dev/null`), a BashOperator-like logger logging "
        f"each output line; {machine['records']:,} calls per run, {machine['repeats']} runs with the three "
        "set-ups interleaved. The processor alone is also timed, without the noise of JSON rendering.",
        "",
        "| what | median | fastest | slowest |",
        "|---|---|---|---|",
    ]
    rows = (
        ("end_to_end", "baseline", "log call, no capture installed"),
        ("end_to_end", "installed_idle", "log call, capture installed, no task executing"),
        ("end_to_end", "installed_in_task", "log call, capture installed, inside a task (record kept)"),
        ("processor_alone", "idle", "the capture processor alone, no task executing"),
        ("processor_alone", "in_task", "the capture processor alone, keeping the record"),
    )
    for group, key, label in rows:
        row = data.get(group, {}).get(key)
        if row:
            lines.append(
                f"| {label} | {row['median_ns'] / 1000:.2f} µs | {row['min_ns'] / 1000:.2f} µs | "
                f"{row['max_ns'] / 1000:.2f} µs |"
            )
    tail, kept = data.get("read_tail_500_lines_ms"), data.get("kept", {})
    if tail:
        lines += [
            "",
            f"Reading the kept tail ({kept.get('lines_read', '?')} lines, control characters stripped and "
            f"redacted): median {tail['median']:.2f} ms, slowest {tail['max']:.2f} ms. Kept "
            f"{kept.get('lines', '?')} lines, {kept.get('bytes', 0):,} bytes; "
            f"{kept.get('dropped', 0):,} older lines dropped.",
        ]
    return [*lines, *_load_average(machine), ""]


def _load_average(machine: dict[str, Any]) -> list[str]:
    load = machine.get("load_average")
    return ["", f"Load average at the end: {load[0]:.2f} on {machine.get('cpus')} CPUs."] if load else []


def ui_section() -> list[str]:
    data = _load("ui.json")
    lines = ["## Recovery UI", "", "Command: `python bench/bench_ui.py`.", ""]
    if data is None:
        return [*lines, "No result yet.", ""]
    machine = data["machine"]
    lines += [
        f"The recovery UI's pages and JSON API (FastAPI TestClient, the whole app: routing, ledger reads, "
        f"redaction, rendering) on a SQLite ledger of {machine['incidents']:,} incidents over 50 DAGs "
        f"(one diagnosis each) and {machine['findings']:,} shadow findings "
        f"({machine['ledger_bytes'] / 1e6:.0f} MB), with the indexes of ledger revision 0004. The auth "
        f"dependency is stood in for (its cost is the auth manager's). Each request {machine['repeats']} "
        "times; the slowest includes the first request's template compilation and imports.",
        "",
    ]
    rows = [
        [row["request"], f"`{row['path']}`", f"{row['median_ms']:.1f} ms", f"{row['max_ms']:.1f} ms"]
        for row in data["requests"]
    ]
    lines += _table(["request", "path", "median", "slowest"], rows)
    return [*lines, *_load_average(machine), ""]


def render() -> str:
    intro = INTRO.read_text().rstrip("\n").splitlines() if INTRO.exists() else ["# Benchmarks", ""]
    lines = [*intro, ""]
    lines += accuracy_section()
    lines += analyzer_section()
    lines += notifier_section()
    lines += startup_section()
    lines += shadow_section()
    lines += redaction_section()
    lines += task_log_capture_section()
    lines += ui_section()
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--output", type=Path, default=OUTPUT, help=f"where to write (default: {OUTPUT.relative_to(ROOT)})"
    )
    args = parser.parse_args(argv)
    if args.output.resolve() == PAGE.resolve():
        parser.error(f"{PAGE.relative_to(ROOT)} holds hand-written text that this rendering would drop")
    args.output.write_text(render())
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
