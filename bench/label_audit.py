"""How far do the corpus labels agree with a second, blind labelling by the same rules?

    python bench/label_audit.py sample      # the blind sample: id and text only, outside the repository
    python bench/label_audit.py compare     # agreement, Cohen's kappa, confusion, grouped-CV top-1
    python bench/label_audit.py curve       # learning curve: grouped CV with 25/50/75/100 % of sources

``sample`` draws a seeded sample of training items, at most one per source (``bench.corpus.group``),
and writes only their id and text to ``/tmp/audit_blind.jsonl``: the labeller sees neither the category
nor the retryable flag nor the source. The second labels, made from that file by
``docs/categories.md`` alone, are kept in ``tests/data/corpus/audit/second_labels.jsonl`` (id, category,
retryable, reason; after the comparison, ``verdict`` on each disagreement: ``original_wrong``,
``second_wrong`` or ``ambiguous``, with ``verdict_reason``, and ``original_basis: thread`` when the
original label names a cause that only the source thread shows, not the text).

``compare`` reports raw agreement and Cohen's kappa of the categories, the confusion between the two
labellings, agreement of the retryable flag, and the analyzer's grouped-CV top-1 on the sampled items
(``bench.accuracy.evaluate_cv``: each item diagnosed by a model that never saw its source) judged against
the original labels, against the second labels and on the items where both agree. With the verdicts it
also estimates the ceiling that label noise puts on top-1: an analyzer right by the rules on every item
still disagrees with the labels where the original label is wrong, and on about half of the ambiguous
items. Results: ``bench/results/label_audit.json``.

``curve`` is the learning curve of the training side: the grouped 5-fold split of all training items is
kept (the test items are the same at every point), and each fold's model is trained on the items and
pattern examples of a seeded, nested 25/50/75/100 % of that fold's training sources. Top-1 of the model
alone and of patterns + model. Results: ``bench/results/learning_curve.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.corpus import CORPUS_DIR, ROOT, group, load, read_jsonl

BLIND = Path("/tmp/audit_blind.jsonl")
SECOND_LABELS = CORPUS_DIR / "audit" / "second_labels.jsonl"
RESULTS = ROOT / "bench" / "results"
SAMPLE_SIZE = 150
SEED = 14
FRACTIONS = (0.25, 0.5, 0.75, 1.0)
VERDICTS = ("original_wrong", "second_wrong", "ambiguous")


def sample(items: list[dict[str, Any]], size: int = SAMPLE_SIZE, seed: int = SEED) -> list[dict[str, str]]:
    """``size`` items, at most one per source, as ``{"id", "text"}`` only, in id order; the same
    ``items`` and ``seed`` always give the same sample."""
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in sorted(items, key=lambda i: i["id"]):
        by_source[group(item)].append(item)
    rng = random.Random(seed)
    sources = rng.sample(sorted(by_source), min(size, len(by_source)))
    chosen = [rng.choice(by_source[source]) for source in sources]
    return [{"id": item["id"], "text": item["text"]} for item in sorted(chosen, key=lambda i: i["id"])]


def write_blind(path: Path = BLIND, size: int = SAMPLE_SIZE, seed: int = SEED) -> int:
    blind = sample(load("train"), size, seed)
    with path.open("w", encoding="utf-8") as handle:
        for entry in blind:
            handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
    return len(blind)


def kappa(pairs: list[tuple[Any, Any]]) -> float:
    """Cohen's kappa of two labellings of the same items (1: perfect, 0: as by chance)."""
    n = len(pairs)
    if not n:
        return 0.0
    observed = sum(a == b for a, b in pairs) / n
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    expected = sum(first[k] * second[k] for k in first) / (n * n)
    return (observed - expected) / (1 - expected) if expected < 1 else 1.0


def agreement(original: dict[str, dict[str, Any]], second: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Category and retryable agreement of the items both labellings have, and the confusion between
    them (``original -> second`` for each disagreement)."""
    ids = sorted(set(original) & set(second))
    pairs = [(original[i]["category"], second[i]["category"]) for i in ids]
    retry = [(original[i]["retryable"], second[i]["retryable"]) for i in ids]
    n = len(ids) or 1
    confusion = Counter(f"{a} -> {b}" for a, b in pairs if a != b)
    return {
        "n": len(ids),
        "category_agreement": sum(a == b for a, b in pairs) / n,
        "category_kappa": kappa(pairs),
        "confusion": dict(sorted(confusion.items(), key=lambda kv: (-kv[1], kv[0]))),
        "retryable_agreement": sum(a is b for a, b in retry) / n,
        "retryable_kappa": kappa([(str(a), str(b)) for a, b in retry]),
        "retryable_confusion": dict(Counter(f"{a} -> {b}" for a, b in retry if a is not b)),
    }


def cv_accuracy(
    predicted: dict[str, str], original: dict[str, dict[str, Any]], second: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Top-1 of the predictions against the original labels, against the second labels, and on the
    items where both labellings agree."""
    ids = sorted(set(original) & set(second) & set(predicted))
    agreed = [i for i in ids if original[i]["category"] == second[i]["category"]]

    def top1(keys: list[str], labels: dict[str, dict[str, Any]]) -> float:
        return sum(predicted[i] == labels[i]["category"] for i in keys) / (len(keys) or 1)

    return {
        "n": len(ids),
        "vs_original": top1(ids, original),
        "vs_second": top1(ids, second),
        "agreed_n": len(agreed),
        "on_agreed": top1(agreed, original),
    }


def ceiling(second: dict[str, dict[str, Any]], n: int) -> dict[str, Any]:
    """What label noise leaves of top-1, from the verdicts on the disagreements: a rule-perfect
    analyzer loses every item whose original label is wrong and about half of the ambiguous ones."""
    verdicts = Counter(entry.get("verdict") for entry in second.values() if entry.get("verdict"))
    wrong, ambiguous = verdicts["original_wrong"], verdicts["ambiguous"]
    n = n or 1
    from_thread = sum(1 for entry in second.values() if entry.get("original_basis") == "thread")
    return {
        "verdicts": {v: verdicts[v] for v in VERDICTS},
        "original_wrong_from_thread": from_thread,
        "original_wrong_rate": wrong / n,
        "ambiguous_rate": ambiguous / n,
        "ceiling": 1 - (wrong + ambiguous / 2) / n,
        "ceiling_range": [1 - (wrong + ambiguous) / n, 1 - wrong / n],
    }


def compare(path: Path = SECOND_LABELS) -> dict[str, Any]:
    from bench.accuracy import evaluate_cv
    from qubinode_recovery_provider.diagnosis import PatternLibrary

    train = load("train")
    second = {entry["id"]: entry for entry in read_jsonl(path)}
    original = {item["id"]: item for item in train if item["id"] in second}
    library = PatternLibrary.load()
    result: dict[str, Any] = {"agreement": agreement(original, second)}
    for name, with_model in (("patterns_and_model", True), ("patterns_only", False)):
        rows = evaluate_cv(library, train, with_model)["rows"]
        predicted = {r["id"]: r["pred"] for r in rows if r["id"] in second}
        result[name] = cv_accuracy(predicted, original, second)
    result["noise"] = ceiling(second, len(original))
    result["disagreements"] = [
        {
            "id": i,
            "original": [original[i]["category"], original[i]["retryable"]],
            "second": [second[i]["category"], second[i]["retryable"]],
            "verdict": second[i].get("verdict"),
        }
        for i in sorted(original)
        if original[i]["category"] != second[i]["category"]
    ]
    return result


def nested_sources(
    items: list[dict[str, Any]], fractions: tuple[float, ...], seed: int
) -> list[frozenset[str]]:
    """For each fraction, that share of the sources of ``items`` (rounded), drawn in one seeded order:
    each set holds the smaller ones."""
    order = sorted({group(item) for item in items})
    random.Random(seed).shuffle(order)
    return [frozenset(order[: round(f * len(order))]) for f in fractions]


def curve(fractions: tuple[float, ...] = FRACTIONS, seed: int = SEED) -> list[dict[str, Any]]:
    """Grouped-CV top-1 on the whole training side with each fold's model trained on a nested share of
    the sources: the model alone and patterns + model (the patterns, and the model's thresholds in
    ``calibration.json``, are the shipped ones at every point)."""
    from bench.accuracy import evaluate_cv
    from qubinode_recovery_provider.diagnosis import PatternLibrary
    from qubinode_recovery_provider.diagnosis.model import text_lines
    from scripts.train_model import SHIPPED, fold_of, out_of_fold

    items = load("train")
    library = PatternLibrary.load()
    which = fold_of(items)
    points = []
    for fraction, sources in zip(fractions, nested_sources(items, fractions, seed), strict=True):
        models = out_of_fold(items, SHIPPED, sources)
        alone = [
            models[which[i]].predict(text_lines(item["text"])).category == item["category"]
            for i, item in enumerate(items)
        ]
        joint = evaluate_cv(library, items, True, sources)
        points.append(
            {
                "fraction": fraction,
                "sources": len(sources),
                "items": sum(1 for item in items if group(item) in sources),
                "model_alone": sum(alone) / len(items),
                "patterns_and_model": joint["accuracy"],
                "macro_f1": joint["macro_f1"],
                "unknown_rate": joint["unknown_rate"],
            }
        )
        p = points[-1]
        print(
            f"{fraction:.0%} of sources ({p['sources']} sources, {p['items']} items): model alone "
            f"{p['model_alone']:.3f}, patterns + model {p['patterns_and_model']:.3f}",
            flush=True,
        )
    return points


def print_compare(result: dict[str, Any]) -> None:
    a = result["agreement"]
    print(f"items: {a['n']}")
    print(f"category agreement {a['category_agreement']:.3f}, Cohen's kappa {a['category_kappa']:.3f}")
    print(f"retryable agreement {a['retryable_agreement']:.3f}, kappa {a['retryable_kappa']:.3f}")
    print("category confusion (original -> second):")
    for pair, count in a["confusion"].items():
        print(f"  {count:3d}  {pair}")
    print("retryable confusion (original -> second):")
    for pair, count in sorted(a["retryable_confusion"].items(), key=lambda kv: -kv[1]):
        print(f"  {count:3d}  {pair}")
    for name in ("patterns_and_model", "patterns_only"):
        c = result[name]
        print(
            f"grouped-CV top-1, {name}: vs original {c['vs_original']:.3f}, vs second {c['vs_second']:.3f}, "
            f"on the {c['agreed_n']} agreed items {c['on_agreed']:.3f}"
        )
    noise = result["noise"]
    print(
        f"verdicts on the disagreements: {noise['verdicts']} ({noise['original_wrong_from_thread']} of the "
        "original_wrong ones name a cause only the source thread shows)"
    )
    print(
        f"ceiling from label noise "
        f"{noise['ceiling']:.3f} (range {noise['ceiling_range'][0]:.3f}-{noise['ceiling_range'][1]:.3f})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("sample", help="write the blind sample (id and text only)")
    s.add_argument("--out", type=Path, default=BLIND)
    s.add_argument("--size", type=int, default=SAMPLE_SIZE)
    s.add_argument("--seed", type=int, default=SEED)
    c = sub.add_parser("compare", help="compare the second labels with the original ones")
    c.add_argument("--labels", type=Path, default=SECOND_LABELS)
    k = sub.add_parser("curve", help="learning curve by share of training sources")
    k.add_argument("--seed", type=int, action="append", help="source order seed (repeatable)")
    args = parser.parse_args(argv)
    if args.command == "sample":
        print(f"wrote {write_blind(args.out, args.size, args.seed)} items to {args.out}")
        return 0
    RESULTS.mkdir(exist_ok=True)
    if args.command == "curve":
        runs = {seed: curve(FRACTIONS, seed) for seed in args.seed or [SEED]}
        (RESULTS / "learning_curve.json").write_text(json.dumps(runs, indent=2) + "\n")
        return 0
    result = compare(args.labels)
    print_compare(result)
    (RESULTS / "label_audit.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
