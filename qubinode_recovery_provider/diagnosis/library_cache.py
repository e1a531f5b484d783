"""The loaded pattern library, cached once per host: a fresh process skips YAML, validation, literal
derivation and RE2 verification of every pack it loaded before.

One cache file per set of packs, in the analyzer's private cache folder (:func:`.cache.cache_dir`,
``0700``; files ``0600``, written to a temporary file and renamed into place, so concurrent writers
never leave a half-written file and a reader sees one whole version or none). Its name is a hash of
everything the loaded library depends on:

- the provider's version and :data:`LIBRARY_CACHE_VERSION`, and the limits user packs are verified
  against (shortest literal, probe time, RE2 memory);
- the bytes of every shipped pack (their content hash);
- each user pack's path, inode, modification time (ns) and size: an edited, added or removed pack
  file is a different key, so the packs are loaded (and verified) again. A pack modified in the last
  :data:`RACY_NS` is not cached at all (it could change again without its time changing).

The file holds one entry per pack, in load order: its patterns (as validated, with their literals) or
the :class:`~.patterns.PackError` it raised, so a broken user pack is reported again, the same way,
without being read. A SHA-256 of the entries guards the content: a file that is unreadable, damaged or
of another format is a miss (the packs are loaded from their files and the file is written again),
recorded as one counted warning; a cache never yields patterns the packs do not hold.

Plain Python, no Airflow; imports neither YAML nor pydantic.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qubinode_recovery_provider import __version__
from qubinode_recovery_provider.diagnosis.cache import cache_dir, read_trusted
from qubinode_recovery_provider.files import private_dir, write_private

log = logging.getLogger(__name__)

#: Bump when the file format or what loading derives from a pack changes.
LIBRARY_CACHE_VERSION = 1
#: Cache files of other pack sets kept besides the one just written (older ones are deleted).
KEEP_FILES = 8
_PREFIX = "library-"
#: A user pack modified less than this long ago is not cached: file times have a coarse resolution
#: (milliseconds), so a pack rewritten at once with the same size could keep its time (git's "racy" case).
RACY_NS = 2_000_000_000


@dataclass(frozen=True)
class PackFailure:
    """A pack that could not be loaded: the fields of its :class:`~.patterns.PackError`."""

    source: str
    pattern_id: str | None
    problem: str


#: What loading one pack file gave: rows ``(pattern_dump, literals)`` or the failure.
PackEntry = list[tuple[dict[str, Any], list[str]]] | PackFailure


@dataclass
class CacheCounters:
    """What the library cache did in this process (for tests and benchmarks)."""

    hits: int = 0
    misses: int = 0
    damaged: int = 0
    written: int = 0


counters = CacheCounters()


def library_key(sources: Sequence[tuple[Path, bool]], limits: Sequence[object]) -> str | None:
    """The cache key of loading ``sources``; None when a pack file cannot be read (no caching then:
    the ordinary load reports the problem).

    :param sources: the pack files in load order, each with whether it is verified (a user pack).
    :param limits: the verification limits user packs are held to.
    """
    digest = hashlib.sha256(f"{LIBRARY_CACHE_VERSION}|{__version__}|{list(limits)!r}".encode())
    racy_after = time.time_ns() - RACY_NS
    for path, verify in sources:
        try:
            if verify:
                info = path.stat()
                if info.st_mtime_ns >= racy_after:
                    return None  # it may change again within the clock's resolution: not cached
                digest.update(f"|user|{path}|{info.st_ino}|{info.st_mtime_ns}|{info.st_size}".encode())
            else:
                digest.update(f"|shipped|{path.name}|".encode())
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            return None
    return digest.hexdigest()[:32]


def _path(key: str) -> Path | None:
    directory = cache_dir()
    return directory / f"{_PREFIX}{key}.json" if directory is not None else None


def read(key: str) -> tuple[list[PackEntry] | None, str | None]:
    """The cached entries for ``key``, and a one-line problem when a cache file exists but cannot be
    used (damaged, another format): then the entries are None, as for a plain miss.

    :param key: from :func:`library_key`.
    """
    path = _path(key)
    data = read_trusted(path) if path is not None else None
    if data is None:
        counters.misses += 1
        return None, None
    try:
        entries = _decode(data, key)
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        counters.misses += 1
        counters.damaged += 1
        return None, f"pattern cache {path} is unusable ({exc}); the packs were loaded from their files"
    counters.hits += 1
    return entries, None


def _decode(data: bytes, key: str) -> list[PackEntry]:
    header, _, body = data.partition(b"\n")
    meta = json.loads(header)
    if meta.get("version") != LIBRARY_CACHE_VERSION or meta.get("key") != key:
        raise ValueError("written for other packs or by another version")
    if hashlib.sha256(body).hexdigest() != meta.get("sha256"):
        raise ValueError("checksum mismatch")
    entries: list[PackEntry] = []
    for entry in json.loads(body):
        if "failure" in entry:
            source, pattern_id, problem = entry["failure"]
            entries.append(PackFailure(str(source), pattern_id, str(problem)))
            continue
        rows = []
        for pattern, literals in entry["patterns"]:
            if not (isinstance(pattern["id"], str) and isinstance(pattern["regex"], str) and literals):
                raise TypeError("a cached pattern without id, regex or literals")
            rows.append((pattern, [str(lit) for lit in literals]))
        entries.append(rows)
    return entries


def write(key: str, entries: Sequence[PackEntry]) -> None:
    """Store the entries of ``key`` (atomically, ``0600``); a failure is logged, never raised.

    :param key: from :func:`library_key`.
    :param entries: one per pack file, in load order.
    """
    path = _path(key)
    if path is None:
        return
    rows = [
        {"failure": [e.source, e.pattern_id, e.problem]}
        if isinstance(e, PackFailure)
        else {"patterns": [[pattern, literals] for pattern, literals in e]}
        for e in entries
    ]
    body = json.dumps(rows, separators=(",", ":")).encode()
    header = json.dumps(
        {"version": LIBRARY_CACHE_VERSION, "key": key, "sha256": hashlib.sha256(body).hexdigest()}
    )
    try:
        private_dir(path.parent)
        write_private(path, header.encode() + b"\n" + body)
    except OSError as exc:  # a read-only home only costs time
        log.info("pattern cache not written (%s): %s", path, exc)
        return
    counters.written += 1
    _prune(path)


def _prune(keep: Path) -> None:
    """Delete all but the :data:`KEEP_FILES` most recent other library cache files."""
    try:
        others = [p for p in keep.parent.glob(f"{_PREFIX}*.json") if p != keep]
        others.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:
        return
    for stale in others[KEEP_FILES:]:
        with contextlib.suppress(OSError):
            stale.unlink()


def clear() -> None:
    """Delete every library cache file."""
    directory = cache_dir()
    if directory is None or not directory.is_dir():
        return
    for path in directory.glob(f"{_PREFIX}*"):
        with contextlib.suppress(OSError):
            path.unlink()


def reset_counters() -> None:
    """Zero :data:`counters`."""
    counters.hits = counters.misses = counters.damaged = counters.written = 0


__all__ = [
    "LIBRARY_CACHE_VERSION",
    "CacheCounters",
    "PackEntry",
    "PackFailure",
    "clear",
    "counters",
    "library_key",
    "read",
    "reset_counters",
    "write",
]
