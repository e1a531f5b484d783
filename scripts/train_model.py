"""Train the learned text model on the training side of the corpus and write it as package data.

    python scripts/train_model.py            # writes qubinode_recovery_provider/diagnosis/text_model.bin.gz
    python scripts/train_model.py --check    # exit 1 when the shipped file differs from a fresh training
    python scripts/train_model.py --search   # grouped CV of the candidates: bench/results/model_search.json

Build time only: scikit-learn (the ``test`` extra) fits the weights; the features are computed by the
run-time code (:mod:`qubinode_recovery_provider.diagnosis.model`), so training and inference read the
same features. It reads ``tests/data/corpus/train.jsonl`` and the examples of the shipped patterns
(each labelled with its pattern's category; an example whose source the corpus split would hold out
as an unseen source is left out). Training is deterministic (a fixed solver, no random state that
matters), so ``--check`` can compare the weights with the shipped ones: retrain after the corpus or
the patterns' examples change.

The model was chosen with ``--search``: grouped 5-fold cross-validation on the training side, the folds
split by source repository (``bench/corpus.py``), so each fold's items come from sources its model
never saw (the numbers are in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
from array import array
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.corpus import SEEN_SOURCES, group, load, source_side  # noqa: E402
from qubinode_recovery_provider.diagnosis.model import (  # noqa: E402
    MODEL_FILE,
    TextModel,
    feature_counts,
    pack,
    text_lines,
)

CLASSES = (
    "configuration",
    "credential",
    "network",
    "resource_exhaustion",
    "service_dependency",
    "state_mismatch",
    "storage",
    "timeout",
    "unknown",
    "virtualization",
)
FOLDS = 5
SEARCH_RESULTS = ROOT / "bench" / "results" / "model_search.json"
WEIGHT_LEVELS = 32767
#: gzip's header carries a time stamp: a fixed one keeps the file byte-identical between trainings.
GZIP_MTIME = 0


@dataclass(frozen=True)
class Params:
    """What is trained: the classifier and the feature space."""

    classifier: str = "svm"  # svm | logreg
    c: float = 1.0
    bits: int = 18
    min_df: int = 3
    examples: bool = True  # the patterns' examples are training items too

    def describe(self) -> str:
        text = f"{self.classifier} C={self.c:g} bits={self.bits} min_df={self.min_df}"
        return text + (" +pattern examples" if self.examples else "")


SHIPPED = Params()
CANDIDATES = [
    Params("svm", 1.0, 18, 3, False),
    Params("svm", 1.0, 18, 2, False),
    Params("svm", 1.0, 18, 3),
    Params("svm", 0.5, 18, 2),
    Params("svm", 1.0, 18, 2),
    Params("svm", 2.0, 18, 2),
    Params("svm", 1.0, 16, 2),
]
#: Id prefixes of the collection batches no pattern was written from (``bench/accuracy.py``'s
#: ``SELECT_ON``): ``--search`` reports the grouped-CV top-1 on their items too.
FRESH = ("g-", "h-", "i-", "j-", "k-", "l-", "m-", "n-", "o-", "p-")


_COUNTS: dict[tuple[str, int], Counter[int]] = {}


def item_counts(item: dict[str, Any], bits: int) -> Counter[int]:
    """Bucket counts of one item, as the run-time model computes them (kept for the next fold)."""
    key = (item["text"], bits)
    if key not in _COUNTS:
        _COUNTS[key] = Counter(feature_counts(text_lines(item["text"]), bits)[0])
    return _COUNTS[key]


@cache
def pattern_examples() -> list[dict[str, Any]]:
    """The shipped patterns' examples as training items (text, the pattern's category, source), in
    the library's order; an example from a source the corpus split would hold out as unseen (a
    source outside ``seen_sources.txt`` that hashes to ``heldout_unseen``) is left out."""
    from qubinode_recovery_provider.diagnosis import PatternLibrary

    seen = set(SEEN_SOURCES.read_text(encoding="utf-8").split())
    out = []
    for compiled in PatternLibrary.load():
        for example in compiled.pattern.examples:
            item = {"id": f"example:{compiled.id}", "text": example.text, "source": example.source}
            source = group(item)
            if source in seen or source_side(source) == "train":
                out.append({**item, "category": compiled.rule.category.value})
    return out


def training_items(items: list[dict[str, Any]], params: Params, held: set[str] = frozenset()) -> list[Any]:
    """``items`` and, when ``params`` say so, the patterns' examples whose source is not in ``held``
    (the sources of a fold's test items)."""
    if not params.examples:
        return items
    return items + [e for e in pattern_examples() if group(e) not in held]


def fit(items: list[dict[str, Any]], params: Params) -> TextModel:
    """Train on ``items`` and return the quantised model exactly as it would be shipped (temperature 1)."""
    header, buckets, idf, weights = fit_arrays(items, params)
    return TextModel.from_bytes(pack(header, buckets, idf, weights))


def fit_temperature(items: list[dict[str, Any]], models: list[TextModel]) -> float:
    """The factor on the scores whose softmax best predicts the labels (least log-loss), on the
    out-of-fold scores of ``models`` (see :func:`out_of_fold`)."""
    which = fold_of(items)
    rows = [
        (models[which[i]].scores(text_lines(item["text"])), CLASSES.index(item["category"]))
        for i, item in enumerate(items)
    ]
    return best_temperature(rows)


def best_temperature(rows: list[tuple[list[float], int]]) -> float:
    """The factor (a multiple of 1/4 up to 30) on the scores whose softmax has the least log-loss on
    ``rows``: (the scores of each class, the index of the label)."""
    best = (math.inf, 1.0)
    for step in range(1, 121):
        t = step / 4
        loss = 0.0
        for scores, label in rows:
            top = max(scores)
            total = sum(math.exp(t * (s - top)) for s in scores)
            loss += math.log(total) - t * (scores[label] - top)
        best = min(best, (loss, t))
    return best[1]


def fit_arrays(
    items: list[dict[str, Any]], params: Params, temperature: float = 1.0
) -> tuple[dict[str, Any], array[int], array[int], array[int]]:
    """The model file's header and arrays trained on ``items``."""
    import numpy as np
    from scipy.sparse import csr_matrix

    counts = [item_counts(item, params.bits) for item in items]
    examples = sum(1 for item in items if item["id"].startswith("example:"))
    df: Counter[int] = Counter(b for c in counts for b in c)
    kept = sorted(b for b, n in df.items() if n >= params.min_df)
    column = {b: i for i, b in enumerate(kept)}
    n = len(items)
    idf_float = {b: math.log((1 + n) / (1 + df[b])) + 1.0 for b in kept}
    unseen_idf = math.log(1 + n) + 1.0  # a bucket no training item has
    idf_q = array("H", [min(65535, round(idf_float[b] * TextModel.IDF_SCALE)) for b in kept])
    data, rows, cols = [], [], []
    for r, c in enumerate(counts):
        values = {}
        total = 0.0
        for bucket, count in c.items():
            pos = column.get(bucket)
            idf = unseen_idf if pos is None else idf_q[pos] / TextModel.IDF_SCALE
            x = (1.0 + math.log(count)) * idf
            total += x * x
            if pos is not None:
                values[pos] = x
        norm = math.sqrt(total) or 1.0
        for pos, x in values.items():
            rows.append(r)
            cols.append(pos)
            data.append(x / norm)
    matrix = csr_matrix((data, (rows, cols)), shape=(n, len(kept)), dtype=np.float64)
    labels = np.array([CLASSES.index(item["category"]) for item in items])
    coef, intercept = _full_coef(_classifier(params).fit(matrix, labels))
    scale = float(np.abs(coef).max()) / WEIGHT_LEVELS or 1.0
    quantised = np.rint(coef.T / scale).astype(np.int16)  # row per bucket
    header = {
        "classes": list(CLASSES),
        "bits": params.bits,
        "bias": [round(float(b), 6) for b in intercept],
        "scale": scale,
        "unseen_idf": unseen_idf,
        "temperature": temperature,
        "params": params.describe(),
        "trained_on": {"split": "train", "items": n - examples, "pattern_examples": examples},
    }
    return header, array("I", kept), idf_q, array("h", quantised.ravel().tolist())


def _classifier(params: Params) -> Any:
    if params.classifier == "svm":
        from sklearn.svm import LinearSVC

        return LinearSVC(C=params.c, class_weight="balanced", random_state=0, max_iter=20000)
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=params.c, class_weight="balanced", max_iter=5000)


def _full_coef(estimator: Any) -> tuple[Any, Any]:
    """Coefficients and intercepts for every class of :data:`CLASSES` (a class absent from the
    training items gets a very low intercept, so it is never predicted)."""
    import numpy as np

    coef = np.zeros((len(CLASSES), estimator.coef_.shape[1]))
    intercept = np.full(len(CLASSES), -30.0)
    for row, cls in enumerate(estimator.classes_):
        coef[cls] = estimator.coef_[row]
        intercept[cls] = estimator.intercept_[row]
    return coef, intercept


def folds(items: list[dict[str, Any]], k: int = FOLDS) -> list[tuple[list[int], list[int]]]:
    """Grouped k-fold split of ``items`` by source (``bench.corpus.group``): (train, test) indexes."""
    from sklearn.model_selection import GroupKFold

    groups = [group(item) for item in items]
    splitter = GroupKFold(n_splits=k)
    return [(list(a), list(b)) for a, b in splitter.split(items, groups=groups)]


_OOF: dict[tuple[tuple[str, ...], Params, frozenset[str] | None], list[TextModel]] = {}


def out_of_fold(
    items: list[dict[str, Any]], params: Params = SHIPPED, sources: frozenset[str] | None = None
) -> list[TextModel]:
    """One model per grouped fold; ``result[fold_of[i]]`` never saw item ``i`` nor its source. With
    ``sources``, each fold's model learns only from the items of those sources (and the pattern
    examples of no other source of ``items``): the folds, and so the test items, stay the same."""
    key = (tuple(item["id"] for item in items), params, sources)
    if key not in _OOF:
        left_out = set() if sources is None else {group(item) for item in items} - sources
        models = []
        for train, test in folds(items):
            held = {group(items[i]) for i in test} | left_out
            learn = [items[i] for i in train if group(items[i]) not in held]
            models.append(fit(training_items(learn, params, held), params))
        temperature = fit_temperature(items, models)
        for model in models:
            model.temperature = temperature
        _OOF[key] = models
    return _OOF[key]


def fold_of(items: list[dict[str, Any]]) -> list[int]:
    """The fold each item is tested in (see :func:`out_of_fold`)."""
    which = [0] * len(items)
    for number, (_, test) in enumerate(folds(items)):
        for i in test:
            which[i] = number
    return which


def search(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Grouped-CV top-1 of each candidate, alone (the model's own verdict on every item, and on the
    items of the :data:`FRESH` batches)."""
    which = fold_of(items)
    fresh = [item["id"].startswith(FRESH) for item in items]
    rows = []
    for params in CANDIDATES:
        models = out_of_fold(items, params)
        hits = [
            models[which[i]].predict(text_lines(item["text"])).category == item["category"]
            for i, item in enumerate(items)
        ]
        top1 = sum(hits) / len(items)
        top1_fresh = sum(h for h, f in zip(hits, fresh, strict=True) if f) / (sum(fresh) or 1)
        size = len(gzip.compress(pack(*fit_arrays(training_items(items, params), params)), mtime=GZIP_MTIME))
        print(
            f"{params.describe():<52} grouped-CV top-1 {top1:.3f}, fresh {top1_fresh:.3f}  {size >> 10} KiB"
        )
        rows.append(
            {
                "params": params.describe(),
                "grouped_cv_top1": round(top1, 4),
                "grouped_cv_top1_fresh": round(top1_fresh, 4),
                "kib": size >> 10,
            }
        )
    return rows


def model_bytes(items: list[dict[str, Any]]) -> bytes:
    """The gzip'd model file trained on ``items`` with the shipped parameters, its temperature fitted
    on out-of-fold scores."""
    temperature = out_of_fold(items)[0].temperature
    arrays = fit_arrays(training_items(items, SHIPPED), SHIPPED, temperature)
    return gzip.compress(pack(*arrays), compresslevel=9, mtime=GZIP_MTIME)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare a fresh training with the shipped file")
    parser.add_argument("--search", action="store_true", help="grouped-CV of the candidate models")
    args = parser.parse_args()
    items = load("train")
    if args.search:
        rows = search(items)
        fresh = sum(1 for item in items if item["id"].startswith(FRESH))
        result = {
            "items": len(items),
            "fresh_items": fresh,
            "folds": FOLDS,
            "shipped": SHIPPED.describe(),
            "candidates": rows,
        }
        SEARCH_RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        return 0
    data = model_bytes(items)
    if args.check:
        if not _same_model(data):
            print(f"{MODEL_FILE.name} differs from a training on the corpus: run scripts/train_model.py")
            return 1
        print(f"{MODEL_FILE.name} is reproducible from the corpus ({len(items)} training items)")
        return 0
    MODEL_FILE.write_bytes(data)
    print(f"wrote {MODEL_FILE.relative_to(ROOT)} ({len(data) / 1024:.0f} KiB, {len(items)} items)")
    return 0


def _same_model(data: bytes) -> bool:
    """Whether ``data`` is the shipped model: the same buckets and IDF, weights within one step of
    quantisation (a solver's last digits may differ between machines)."""
    try:
        shipped = gzip.decompress(MODEL_FILE.read_bytes())
    except OSError:
        return False
    if shipped == gzip.decompress(data):
        return True
    a, b = TextModel.from_bytes(shipped), TextModel.from_bytes(gzip.decompress(data))
    same_shape = a.classes == b.classes and a._row == b._row and a._idf == b._idf
    close = same_shape and a.temperature == b.temperature
    close = close and abs(a.scale - b.scale) <= 1e-6 * max(a.scale, b.scale)
    return close and all(abs(x - y) <= 1 for x, y in zip(a._weights, b._weights, strict=True))


if __name__ == "__main__":
    sys.exit(main())
