"""The labelled corpus of real failure texts and its one fixed, source-disjoint split.

``tests/data/corpus/raw/*.jsonl`` holds the items as collected (text, category, retryable, source).
Items are grouped by their *source*: the repository of a GitHub or GitLab URL (``owner/repo``,
lowercased, renamed repositories merged), else the URL's host name (a forum, a tracker or a mailing
list is one source). The split keeps sources apart:

- the *seen* sources (``tests/data/corpus/seen_sources.txt``, frozen once) are those that fed the old
  item-hash development side: the pattern writers have read them. Their items keep the old side by a
  hash of the item id: ``train`` or ``heldout_seen`` (one in three);
- every other source goes whole to ``heldout_unseen`` or to ``train``, by a hash of the source.

Patterns, the learned model and the confidence calibration are made from ``train`` only; the held-out
sides are read by the accuracy benchmark and nothing else. The headline figure is top-1 accuracy on
``heldout_unseen``: sources that nothing in the training side comes from.

    python bench/corpus.py          # writes tests/data/corpus/{train,heldout_seen,heldout_unseen}.jsonl
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = ROOT / "tests" / "data" / "corpus"
RAW_DIR = CORPUS_DIR / "raw"
SEEN_SOURCES = CORPUS_DIR / "seen_sources.txt"
SIDES = ("train", "heldout_seen", "heldout_unseen")
HELDOUT_SIDES = ("heldout_seen", "heldout_unseen")
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
#: Renamed owners and repositories: one source under its current name.
RENAMED = {
    "podman-container-tools": "containers",
}
_FORGES = ("github.com", "gitlab.com")


def group(item: dict[str, Any]) -> str:
    """The source an item comes from: ``owner/repo`` for a forge URL, else the URL's host name."""
    url = urlparse(str(item["source"]).strip())
    host = (url.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    parts = [p for p in url.path.split("/") if p]
    if host in _FORGES and len(parts) >= 2:
        owner, repo = parts[0].lower(), parts[1].lower()
        repo = repo.removesuffix(".git")
        owner = RENAMED.get(owner, owner)
        return RENAMED.get(f"{owner}/{repo}", f"{owner}/{repo}")
    return host or str(item["source"]).strip().lower()


def item_side(item_id: str) -> str:
    """The old item-hash side: ``heldout`` for one id in three, ``dev`` otherwise."""
    digest = hashlib.sha256(item_id.encode("utf-8")).digest()
    return "heldout" if digest[0] % 3 == 0 else "dev"


def source_side(source: str) -> str:
    """The side of a source nobody had read: ``heldout_unseen`` for half of them, by hash."""
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "heldout_unseen" if digest[0] % 2 == 0 else "train"


def side(item: dict[str, Any], seen: set[str]) -> str:
    """``train``, ``heldout_seen`` or ``heldout_unseen``; never changes for an item."""
    source = group(item)
    if source in seen:
        return "heldout_seen" if item_side(item["id"]) == "heldout" else "train"
    return source_side(source)


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


def seen_sources() -> set[str]:
    """The frozen set of sources the pattern writers had read (see the module docstring)."""
    lines = SEEN_SOURCES.read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def freeze_seen_sources(items: list[dict[str, Any]]) -> set[str]:
    """Write ``seen_sources.txt``: every source with an item on the old development side. Done once."""
    seen = {group(item) for item in items if item_side(item["id"]) == "dev"}
    header = (
        "# Sources (owner/repo or host) with an item on the old item-hash development side: the pattern\n"
        "# writers have read them. Frozen once by bench/corpus.py --freeze-seen; never regenerated.\n"
    )
    SEEN_SOURCES.write_text(header + "".join(f"{s}\n" for s in sorted(seen)), encoding="utf-8")
    return seen


def load(split: str) -> list[dict[str, Any]]:
    """Items of one side (``train``, ``heldout_seen``, ``heldout_unseen``) or of ``heldout`` (both
    held-out sides) from the written split files."""
    if split == "heldout":
        return [item for name in HELDOUT_SIDES for item in load(name)]
    return read_jsonl(CORPUS_DIR / f"{split}.jsonl")


def write_split() -> dict[str, list[dict[str, Any]]]:
    seen = seen_sources()
    sides: dict[str, list[dict[str, Any]]] = {name: [] for name in SIDES}
    for item in raw_items():
        sides[side(item, seen)].append(item)
    for name, items in sides.items():
        with (CORPUS_DIR / f"{name}.jsonl").open("w", encoding="utf-8") as handle:
            for item in sorted(items, key=lambda i: i["id"]):
                handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    return sides


def main(argv: list[str]) -> int:
    if "--freeze-seen" in argv:
        if SEEN_SOURCES.exists():
            raise SystemExit(f"corpus: {SEEN_SOURCES.name} is frozen; it is never regenerated")
        print(f"froze {len(freeze_seen_sources(raw_items()))} seen sources")
    for name, items in write_split().items():
        counter = Counter(item["category"] for item in items)
        groups = len({group(item) for item in items})
        print(
            f"{name}: {len(items)} items from {groups} sources  "
            + ", ".join(f"{k}={v}" for k, v in sorted(counter.items()))
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
