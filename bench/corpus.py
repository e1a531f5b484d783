"""The labelled corpus of real failure texts and its one fixed split.

``tests/data/corpus/raw/*.jsonl`` holds the items as collected (text, category, retryable, source).
Each item's side is fixed by a hash of its id: a third is held out. Patterns are written from the
development side only; the held-out side is read by the accuracy benchmark and nothing else.

    python bench/corpus.py          # writes tests/data/corpus/dev.jsonl and heldout.jsonl, prints counts
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = ROOT / "tests" / "data" / "corpus"
RAW_DIR = CORPUS_DIR / "raw"
CATEGORIES = {
    "virtualization",
    "network",
    "storage",
    "service_dependency",
    "credential",
    "resource_exhaustion",
    "configuration",
    "timeout",
    "state_mismatch",
    "unknown",
}


def side(item_id: str) -> str:
    """``heldout`` for one id in three, by hash; ``dev`` otherwise. Never changes for an id."""
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return "heldout" if digest[0] % 3 == 0 else "dev"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def raw_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for path in sorted(RAW_DIR.glob("*.jsonl")):
        items.extend(read_jsonl(path))
    problems = validate(items)
    if problems:
        raise SystemExit("corpus: " + "; ".join(problems[:5]))
    return items


def validate(items: list[dict[str, Any]]) -> list[str]:
    problems = []
    ids = Counter(item.get("id") for item in items)
    problems += [f"duplicate id {i}" for i, n in ids.items() if n > 1]
    for item in items:
        if item.get("category") not in CATEGORIES:
            problems.append(f"{item.get('id')}: bad category {item.get('category')!r}")
        if item.get("retryable") not in (True, False, None):
            problems.append(f"{item.get('id')}: bad retryable")
        if not str(item.get("text", "")).strip() or not str(item.get("source", "")).strip():
            problems.append(f"{item.get('id')}: text and source are required")
    return problems


def load(split: str) -> list[dict[str, Any]]:
    """Items of one side (``dev`` or ``heldout``) from the written split files."""
    return read_jsonl(CORPUS_DIR / f"{split}.jsonl")


def write_split() -> dict[str, Counter[str]]:
    sides: dict[str, list[dict[str, Any]]] = {"dev": [], "heldout": []}
    for item in raw_items():
        sides[side(item["id"])].append(item)
    counts = {}
    for name, items in sides.items():
        with (CORPUS_DIR / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for item in sorted(items, key=lambda i: i["id"]):
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
        counts[name] = Counter(item["category"] for item in items)
    return counts


if __name__ == "__main__":
    for name, counter in write_split().items():
        print(
            f"{name}: {sum(counter.values())} items  "
            + ", ".join(f"{k}={v}" for k, v in sorted(counter.items()))
        )
    sys.exit(0)
