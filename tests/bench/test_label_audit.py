"""The label audit is only blind if its sample carries no label, and only repeatable if it is seeded.

``bench/label_audit.py`` draws training items at most one per source and writes their id and text
alone; its comparison reports agreement, Cohen's kappa and top-1 against two labellings.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from bench.corpus import CATEGORIES, group, load
from bench.label_audit import (
    SECOND_LABELS,
    agreement,
    ceiling,
    cv_accuracy,
    kappa,
    nested_sources,
    sample,
    write_blind,
)


def _item(item_id: str, source: str, category: str = "network") -> dict[str, object]:
    return {
        "id": item_id,
        "text": f"text of {item_id}",
        "category": category,
        "retryable": None,
        "source": source,
        "note": "a note",
    }


def test_sample_takes_at_most_one_item_per_source_and_only_id_and_text() -> None:
    items = [_item(f"a-{n:03d}", f"https://github.com/o{n % 7}/r/issues/{n}") for n in range(40)]
    items += [_item(f"b-{n:03d}", f"https://forum.example.org/t/{n}") for n in range(5)]
    drawn = sample(items, size=20, seed=3)
    by_id = {item["id"]: item for item in items}
    sources = [group(by_id[entry["id"]]) for entry in drawn]
    assert len(drawn) == 8  # seven repositories and one forum: fewer sources than asked for
    assert len(set(sources)) == len(sources)
    assert all(set(entry) == {"id", "text"} for entry in drawn)
    assert all(entry["text"] == by_id[entry["id"]]["text"] for entry in drawn)


def test_sample_is_deterministic_and_depends_on_the_seed() -> None:
    items = [_item(f"a-{n:03d}", f"https://github.com/o{n}/r/issues/1") for n in range(60)]
    assert sample(items, size=10, seed=5) == sample(list(reversed(items)), size=10, seed=5)
    assert sample(items, size=10, seed=5) != sample(items, size=10, seed=6)


def test_blind_file_of_the_training_side_has_no_label_fields(tmp_path: Path) -> None:
    out = tmp_path / "blind.jsonl"
    assert write_blind(out, size=150, seed=14) == 150
    entries = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(set(entry) == {"id", "text"} for entry in entries)
    train = {item["id"]: item for item in load("train")}
    assert len({group(train[entry["id"]]) for entry in entries}) == 150


def test_the_committed_second_labels_are_training_items_one_per_source_and_valid() -> None:
    entries = [json.loads(line) for line in SECOND_LABELS.read_text(encoding="utf-8").splitlines()]
    train = {item["id"]: item for item in load("train")}
    assert all(entry["id"] in train for entry in entries)
    assert len({group(train[entry["id"]]) for entry in entries}) == len(entries)
    for entry in entries:
        assert entry["category"] in CATEGORIES
        assert entry["retryable"] in (True, False, None)
        assert entry["reason"].strip()
        assert entry.get("verdict") in (None, "original_wrong", "second_wrong", "ambiguous")


def test_kappa_is_one_for_identical_labellings_and_zero_for_chance() -> None:
    assert kappa([("a", "a"), ("b", "b"), ("c", "c")]) == 1.0
    # each labeller says a and b half the time, independently: observed 0.5, expected 0.5
    assert kappa([("a", "a"), ("a", "b"), ("b", "a"), ("b", "b")]) == 0.0
    # 3 of 4 agree; p_o 0.75, p_e (3*2 + 1*2) / 16 = 0.5
    assert kappa([("a", "a"), ("a", "a"), ("a", "b"), ("b", "b")]) == pytest.approx(0.5)


def test_agreement_confusion_and_top1_against_both_labellings() -> None:
    original = {
        "1": {"category": "network", "retryable": True},
        "2": {"category": "timeout", "retryable": None},
        "3": {"category": "storage", "retryable": False},
        "4": {"category": "timeout", "retryable": None},
    }
    second = {
        "1": {"category": "network", "retryable": None},
        "2": {"category": "network", "retryable": None, "verdict": "original_wrong"},
        "3": {"category": "storage", "retryable": False},
        "4": {"category": "network", "retryable": None, "verdict": "ambiguous"},
    }
    result = agreement(original, second)
    assert result["n"] == 4
    assert result["category_agreement"] == 0.5
    assert result["confusion"] == {"timeout -> network": 2}
    assert result["retryable_agreement"] == 0.75
    assert result["retryable_confusion"] == {"True -> None": 1}
    top1 = cv_accuracy({"1": "network", "2": "network", "3": "credential", "4": "timeout"}, original, second)
    assert top1 == {"n": 4, "vs_original": 0.5, "vs_second": 0.5, "agreed_n": 2, "on_agreed": 0.5}
    noise = ceiling(second, 4)
    assert noise["verdicts"] == {"original_wrong": 1, "second_wrong": 0, "ambiguous": 1}
    assert noise["ceiling"] == pytest.approx(1 - 1.5 / 4)
    assert noise["ceiling_range"] == pytest.approx([0.5, 0.75])


def test_nested_sources_grow_and_keep_the_smaller_sets() -> None:
    items = [_item(f"a-{n:03d}", f"https://github.com/o{n}/r/issues/1") for n in range(40)]
    sets = nested_sources(items, (0.25, 0.5, 0.75, 1.0), seed=2)
    assert [len(s) for s in sets] == [10, 20, 30, 40]
    assert all(a < b for a, b in itertools.pairwise(sets))
    assert nested_sources(items, (0.25, 0.5, 0.75, 1.0), seed=2) == sets
