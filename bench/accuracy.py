"""Accuracy of the analyzer on the labelled corpus of real failures.

    python bench/accuracy.py                 # held-out side: the figures in docs/benchmarks.md
    python bench/accuracy.py --split dev     # development side (for pattern work)
    python bench/accuracy.py --fit           # fit the confidence calibration on the dev side only

Metrics: top-1 accuracy of the root-cause category, macro-F1 over the categories present, recall per
category, the unknown rate (share of items the analyzer calls unknown), the share of ``retryable: true``
claims that are wrong (the label is not true), and the expected calibration error of the confidence
(10 equal-width bins). ``--overlap`` also reports how many held-out texts share a line with a pattern
example, and the accuracy without them.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import defaultdict
from dataclasses import fields
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import ROOT, load
from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
from qubinode_recovery_provider.diagnosis.analyzer import CALIBRATION_FILE, Calibration

RESULTS = ROOT / "bench" / "results"


def evaluate(analyzer: FailureAnalyzer, items: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for item in items:
        d = analyzer.analyze(item["text"])
        rows.append(
            {
                "id": item["id"],
                "label": item["category"],
                "pred": d.root_cause.value,
                "confidence": d.confidence,
                "retry_label": item["retryable"],
                "retry_pred": d.retryable,
                "pattern": d.primary_pattern,
            }
        )
    return {"n": len(rows), **metrics(rows), "rows": rows}


def metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows) or 1
    correct = [r["label"] == r["pred"] for r in rows]
    labels = sorted({r["label"] for r in rows})
    recall, f1 = {}, {}
    for cat in labels:
        tp = sum(1 for r in rows if r["label"] == cat and r["pred"] == cat)
        fn = sum(1 for r in rows if r["label"] == cat and r["pred"] != cat)
        fp = sum(1 for r in rows if r["label"] != cat and r["pred"] == cat)
        recall[cat] = tp / (tp + fn) if tp + fn else 0.0
        precision = tp / (tp + fp) if tp + fp else 0.0
        f1[cat] = 2 * precision * recall[cat] / (precision + recall[cat]) if precision + recall[cat] else 0.0
    claims = [r for r in rows if r["retry_pred"] is True]
    wrong_claims = [r for r in claims if r["retry_label"] is not True]
    no_claims = [r for r in rows if r["retry_pred"] is False]
    wrong_no = [r for r in no_claims if r["retry_label"] is not False]
    return {
        "accuracy": sum(correct) / n,
        "macro_f1": sum(f1.values()) / len(f1) if f1 else 0.0,
        "recall": recall,
        "unknown_rate": sum(1 for r in rows if r["pred"] == "unknown") / n,
        "retryable_true_claims": len(claims),
        "retryable_true_wrong_rate": len(wrong_claims) / len(claims) if claims else 0.0,
        "retryable_false_claims": len(no_claims),
        "retryable_false_wrong_rate": len(wrong_no) / len(no_claims) if no_claims else 0.0,
        "ece": ece([r["confidence"] for r in rows], correct),
    }


def ece(confidences: list[float], correct: list[bool], bins: int = 10) -> float:
    buckets: dict[int, list[tuple[float, bool]]] = defaultdict(list)
    for c, ok in zip(confidences, correct, strict=True):
        buckets[min(int(c * bins), bins - 1)].append((c, ok))
    total = len(confidences) or 1
    return sum(
        len(b) / total * abs(sum(c for c, _ in b) / len(b) - sum(ok for _, ok in b) / len(b))
        for b in buckets.values()
    )


def fit_calibration(analyzer: FailureAnalyzer, items: list[dict[str, Any]]) -> Calibration:
    """Logistic regression of correctness on the confidence features, by gradient descent (dev only)."""
    data, unknown_hits, unknown_total = [], 0, 0
    for item in items:
        pred, feats = analyzer.features_of(item["text"])
        if feats is None:
            unknown_total += 1
            unknown_hits += item["category"] == "unknown"
            continue
        x = [1.0, min(feats.score, 2.0), feats.margin, feats.cause, min(feats.agree, 3.0)]
        data.append((x, 1.0 if pred.value == item["category"] else 0.0))
    w = [0.0] * 5
    l2 = 0.05
    for _ in range(4000):
        grad = [0.0] * 5
        for x, y in data:
            p = 1 / (1 + math.exp(-sum(a * b for a, b in zip(w, x, strict=True))))
            for k in range(5):
                grad[k] += (p - y) * x[k]
        for k in range(5):
            w[k] -= 0.5 * (grad[k] / len(data) + (l2 * w[k] if k else 0.0))
    base = Calibration()
    unknown_conf = (unknown_hits + 1) / (unknown_total + 2)
    return Calibration(
        bias=w[0],
        w_score=w[1],
        w_margin=w[2],
        w_cause=w[3],
        w_agree=w[4],
        w_corroborate=base.w_corroborate,
        w_contradict=base.w_contradict,
        unknown_confidence=round(unknown_conf, 4),
        min_retryable_confidence=base.min_retryable_confidence,
    )


def overlap_ids(items: list[dict[str, Any]]) -> set[str]:
    """Items that share a non-trivial line with any pattern example or near miss."""
    lines = set()
    for cp in PatternLibrary.load():
        for ex in [*cp.pattern.examples, *cp.pattern.near_misses]:
            lines.update(_norm(line) for line in ex.text.splitlines() if len(_norm(line)) > 20)
    return {i["id"] for i in items if any(_norm(line) in lines for line in i["text"].splitlines())}


def _norm(line: str) -> str:
    return " ".join(line.split()).lower()


def print_report(split: str, result: dict[str, Any]) -> None:
    print(f"split={split} n={result['n']}")
    for key in (
        "accuracy",
        "macro_f1",
        "unknown_rate",
        "retryable_true_wrong_rate",
        "retryable_false_wrong_rate",
        "ece",
    ):
        print(f"  {key:<28} {result[key]:.3f}")
    print(f"  retryable true claims        {result['retryable_true_claims']}")
    print("  recall per category:")
    for cat, value in sorted(result["recall"].items()):
        support = sum(1 for r in result["rows"] if r["label"] == cat)
        print(f"    {cat:<22} {value:.3f}  (n={support})")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--split", choices=["dev", "heldout"], default="heldout")
    parser.add_argument("--fit", action="store_true", help="fit calibration.json on the dev side")
    parser.add_argument(
        "--fit-prefixes",
        default="",
        help="comma-separated id prefixes: fit only on these dev items (ones no pattern was written from)",
    )
    parser.add_argument("--overlap", action="store_true", help="report overlap with pattern examples")
    parser.add_argument("--errors", action="store_true", help="list misclassified items (dev side only)")
    args = parser.parse_args()
    analyzer = FailureAnalyzer(PatternLibrary.load(), use_llm=False)  # the patterns are measured
    if args.fit:
        prefixes = tuple(p for p in args.fit_prefixes.split(",") if p)
        fit_items = [i for i in load("dev") if not prefixes or i["id"].startswith(prefixes)]
        calibration = fit_calibration(analyzer, fit_items)
        values = {f.name: round(getattr(calibration, f.name), 4) for f in fields(calibration)}
        fitted_on = {"split": "dev", "id_prefixes": list(prefixes), "items": len(fit_items)}
        CALIBRATION_FILE.write_text(
            json.dumps({"fitted_on": fitted_on, "coefficients": values}, indent=2) + "\n"
        )
        print(f"wrote {CALIBRATION_FILE.relative_to(ROOT)}: {values}")
        analyzer = FailureAnalyzer(PatternLibrary.load(), calibration, use_llm=False)
    items = load(args.split)
    result = evaluate(analyzer, items)
    print_report(args.split, result)
    if args.errors and args.split == "dev":
        for r in result["rows"]:
            if r["label"] != r["pred"]:
                print(f"  MISS {r['id']}: label={r['label']} pred={r['pred']} ({r['pattern']})")
    summary = {k: v for k, v in result.items() if k != "rows"}
    if args.overlap:
        shared = overlap_ids(items)
        rest = [r for r in result["rows"] if r["id"] not in shared]
        summary["overlap_items"] = len(shared)
        summary["accuracy_without_overlap"] = metrics(rest)["accuracy"] if rest else None
        print(
            f"  items sharing a line with a pattern example: {len(shared)}; "
            f"accuracy without them: {summary['accuracy_without_overlap']:.3f}"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"accuracy_{args.split}.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
