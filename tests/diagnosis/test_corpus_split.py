"""The accuracy figures are only honest if the written split is the one the rules give.

``bench/corpus.py`` writes ``tests/data/corpus/{train,heldout_seen,heldout_unseen}.jsonl`` from the raw
parts; these tests fail when a raw part was added or edited and the split files were not rewritten
(the learned model would then be trained, and the figures measured, on a stale split), and when a
source feeds both the training side and the unseen held-out side.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.corpus import SIDES, group, load, raw_items, seen_sources, side  # noqa: E402


def test_split_files_hold_every_raw_item_once_on_its_side() -> None:
    seen = seen_sources()
    expected = {item["id"]: (side(item, seen), item) for item in raw_items()}
    written = {name: load(name) for name in SIDES}
    ids = [item["id"] for items in written.values() for item in items]
    assert len(ids) == len(set(ids)), "an item is written twice"
    assert set(ids) == set(expected), "the split files are stale: run `python bench/corpus.py`"
    for name, items in written.items():
        for item in items:
            where, raw = expected[item["id"]]
            assert where == name, f"{item['id']} belongs on {where}, is on {name}"
            assert item == raw, f"{item['id']} differs from its raw part"


def test_no_source_feeds_training_and_the_unseen_held_out_side() -> None:
    train = {group(item) for item in load("train")}
    unseen = {group(item) for item in load("heldout_unseen")}
    assert not train & unseen
    assert not unseen & seen_sources()
