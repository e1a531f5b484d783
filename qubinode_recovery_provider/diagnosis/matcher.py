"""Find every known-error pattern in a log with one pass over its bytes, in time linear in its size.

Where Hyperscan is available (x86-64 wheels), one Hyperscan database holds every pattern's regex in
prefilter mode: it reports, in C, the places where a pattern can match, and RE2 (:mod:`.linear`)
confirms the pattern on those lines only. Elsewhere the required literals of every pattern (see
:mod:`.literals`) form a pyahocorasick automaton that does the same job more slowly.

Time stays linear whatever the log holds:

- logs are read in chunks of :data:`CHUNK_BYTES` that end at a line boundary (bounded memory);
- the prefilter's hits are sorted once per chunk and grouped by line: the line around a hit is found
  once per line, never once per hit, and hits of one expression close together on one line are
  dropped in the prefilter's callback (:data:`HIT_GAP`), so a 4 MB line full of hits costs one pass;
- a line up to :data:`MAX_LINE_WINDOW` bytes is matched whole; a longer line is matched in windows of
  that size centred on the prefilter's hits, at most :data:`MAX_WINDOWS_PER_LINE` per pattern and
  line, so every regex call reads at most 4 KiB (a thread can be given up on promptly);
- RE2 is linear in its input; user patterns that are still slow were refused when their pack loaded;
- text beyond :data:`MAX_SCAN_BYTES` is not read: the last :data:`MAX_SCAN_BYTES` of a log are
  scanned (the failure is at the end), and the result says how much was skipped;
- an optional deadline (a :func:`time.monotonic` value) stops the scan between lines and inside the
  prefilter; the result then says it stopped and holds what was found so far.

The techniques and the alternatives they were chosen over are timed by ``bench/bench_analyzer.py``.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from qubinode_recovery_provider.diagnosis.cache import cache_dir, read_trusted, write_atomically
from qubinode_recovery_provider.diagnosis.linear import LinearPattern, NotLinear
from qubinode_recovery_provider.diagnosis.preprocess import BLOB_MARKER, expand_line

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis.patterns import CompiledPattern

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 * 1024 * 1024
#: Bytes of a long line searched around one prefilter hit (and the most bytes any regex call reads).
MAX_LINE_WINDOW = 4096
#: Windows tried per pattern on one long line before the line is given up for that pattern.
MAX_WINDOWS_PER_LINE = 8
#: Hits of one prefilter expression closer than this on one line are one hit (its window covers both).
HIT_GAP = 256
#: The longest line whose Ansible result blob is decoded (a 2.7 MB loop result is common).
MAX_BLOB_LINE_BYTES = 16 * 1024 * 1024
#: The most bytes of one log that are scanned: the last ones.
MAX_SCAN_BYTES = 256 * 1024 * 1024
#: Patterns whose whole regex goes into the Hyperscan database (its compile time grows faster than
#: linearly with their number); further patterns are prefiltered by their literals.
MAX_PREFILTER_REGEXES = 1000
HITS_KEPT_PER_PATTERN = 3  # first and last occurrences of each pattern are kept
TAIL_LINES = 60
_BLOB = -1
_DEADLINE_CHECK_MASK = 0xFFF  # the prefilter looks at the clock every 4096 callbacks
HYPERSCAN_CACHE_VERSION = 1

Hits = list[tuple[int, tuple[int, ...]]]


class PrefilterIndex(Protocol):
    """Finds, in bytes, the places where a pattern can match (a superset: RE2 confirms them)."""

    kind: str

    def find(self, data: bytes, deadline: float | None = None) -> Hits:
        """``(end_offset_exclusive, pattern_ids)`` for the candidates in ``data``, in any order; hits
        of one expression closer than :data:`HIT_GAP` on one line are reported once. Stops early
        (returning what it found) once ``deadline`` (a :func:`time.monotonic` value) has passed."""


class _HitFilter:
    """The prefilter callbacks' bookkeeping: drops near-duplicate hits and watches the deadline.

    :meth:`keep` runs once per prefilter match, in the hot loop of a hostile line, so it is small.
    """

    __slots__ = ("calls", "data", "deadline", "found", "last")

    def __init__(self, data: bytes, deadline: float | None) -> None:
        self.data = data
        self.deadline = deadline
        self.found: Hits = []
        self.last: dict[int, int] = {}
        self.calls = 0

    def keep(self, expr_id: int, end: int) -> bool:
        """Whether a hit of ``expr_id`` ending at ``end`` is new (not within HIT_GAP on its line)."""
        previous = self.last.get(expr_id, -HIT_GAP)
        if end - previous < HIT_GAP and self.data.find(b"\n", previous, end) < 0:
            return False
        self.last[expr_id] = end
        return True

    def expired(self) -> bool:
        """Whether the deadline has passed (looked at every 4096 calls)."""
        self.calls += 1
        if self.calls & _DEADLINE_CHECK_MASK or self.deadline is None:
            return False
        return time.monotonic() >= self.deadline


class HyperscanIndex:
    """Hyperscan block-mode database: the whole regex of every ASCII pattern (up to
    :data:`MAX_PREFILTER_REGEXES`) in prefilter mode (a superset of its matches, confirmed per line by
    RE2), plus plain literals for the other patterns and for the Ansible blob marker. It reports only
    lines that can match, in C at about 1 GB/s. Compiling the database takes about a second, so it is
    cached on disk, keyed by the expressions (see :mod:`.cache`)."""

    kind = "hyperscan"

    def __init__(
        self,
        patterns: Sequence[CompiledPattern],
        extra: dict[bytes, tuple[int, ...]],
        compile_missing: bool = True,
    ) -> None:
        import hyperscan

        expressions: list[bytes] = []
        flags: list[int] = []
        self._ids: list[tuple[int, ...]] = []
        literal_flag = hyperscan.HS_FLAG_CASELESS
        regex_base = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_ALLOWEMPTY
        regexes = 0
        for index, cp in enumerate(patterns):
            if cp.regex_source.isascii() and regexes < MAX_PREFILTER_REGEXES:
                regexes += 1
                expressions.append(cp.regex_source.encode("ascii"))
                flags.append(regex_base | (hyperscan.HS_FLAG_CASELESS if cp.ignore_case else 0))
                self._ids.append((index,))
                continue
            for literal in cp.literals:
                expressions.append(_escaped(literal.encode("utf-8")))
                flags.append(literal_flag)
                self._ids.append((index,))
        for marker, ids in extra.items():
            expressions.append(_escaped(marker))
            flags.append(literal_flag)
            self._ids.append(ids)
        self._db = _hyperscan_database(hyperscan, expressions, flags, compile_missing)
        self._terminated = hyperscan.ScanTerminated
        self._lock = threading.Lock()

    def find(self, data: bytes, deadline: float | None = None) -> Hits:
        hits = _HitFilter(data, deadline)
        ids = self._ids

        keep, found, expired = hits.keep, hits.found, hits.expired

        def on_match(expr_id: int, _start: int, end: int, _flags: int, _ctx: object) -> bool:
            if keep(expr_id, end):
                found.append((end, ids[expr_id]))
            return expired()  # True stops the scan

        # One scratch space per database: scans are serialised. A scan stopped by the deadline raises
        # ScanTerminated; the caller sees the deadline and stops.
        with self._lock, contextlib.suppress(self._terminated):
            self._db.scan(data, match_event_handler=on_match)
        return hits.found


def _escaped(literal: bytes) -> bytes:
    return b"".join(b"\\x%02x" % byte for byte in literal)


class NotCompiled(LookupError):
    """The Hyperscan database is not in the cache and compiling it was not allowed."""


def _hyperscan_database(
    hyperscan: Any, expressions: list[bytes], flags: list[int], compile_missing: bool = True
) -> Any:
    digest = hashlib.sha256(repr((HYPERSCAN_CACHE_VERSION, expressions, flags)).encode()).hexdigest()[:32]
    directory = cache_dir()
    path = directory / f"hs-{digest}.db" if directory else None
    cached = read_trusted(path) if path is not None else None
    if cached is not None:
        try:
            db = hyperscan.loadb(cached, hyperscan.HS_MODE_BLOCK)
            db.scratch = hyperscan.Scratch(db)  # a loaded database comes without scratch space
            return db
        except Exception as exc:  # a damaged cache file: rebuild it
            log.warning("ignoring unreadable pattern cache %s: %s", path, exc)
    if not compile_missing:
        raise NotCompiled(str(path))
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions), flags=flags
    )
    if path is not None:
        write_atomically(path, hyperscan.dumpb(db))
    return db


class AhoCorasickIndex:
    """Portable literal index: pyahocorasick over the bytes seen as Latin-1 (one char per byte)."""

    kind = "pyahocorasick"

    def __init__(self, literals: dict[bytes, tuple[int, ...]]) -> None:
        import ahocorasick

        self._automaton = ahocorasick.Automaton()
        for number, (literal, ids) in enumerate(literals.items()):
            self._automaton.add_word(literal.decode("latin-1").lower(), (number, ids))
        self._automaton.make_automaton()

    def find(self, data: bytes, deadline: float | None = None) -> Hits:
        hits = _HitFilter(data, deadline)
        # Latin-1 lower() keeps every character's length, so offsets stay byte offsets.
        for end, (number, ids) in self._automaton.iter(data.decode("latin-1").lower()):
            if hits.keep(number, end + 1):
                hits.found.append((end + 1, ids))
            if hits.expired():
                break
        return hits.found


def build_index(patterns: Sequence[CompiledPattern], kind: str = "auto") -> PrefilterIndex:
    """The fastest prefilter available.

    :param kind: ``auto`` (Hyperscan when installed, its database compiled and cached when missing),
        ``cached`` (Hyperscan only when its database is in the cache already, else the literal index:
        for the failure path, where compiling, about 2 s of CPU, would eat the callback's budget;
        the literal index is built in milliseconds and finds the same hits), ``hyperscan`` or
        ``pyahocorasick``.
    """
    blob: dict[bytes, tuple[int, ...]] = {BLOB_MARKER.encode(): (_BLOB,)}
    if kind in ("auto", "cached", "hyperscan"):
        try:
            return HyperscanIndex(patterns, blob, compile_missing=kind != "cached")
        except NotCompiled:
            log.debug("no cached Hyperscan database: using the literal index")
        except ImportError:
            if kind == "hyperscan":
                raise
        except Exception as exc:  # a user pattern Hyperscan cannot compile: use the literal index
            if kind == "hyperscan":
                raise
            log.warning("Hyperscan cannot compile the pattern library (%s); using the literal index", exc)
    by_literal: dict[bytes, list[int]] = collections.defaultdict(list)
    for i, cp in enumerate(patterns):
        for literal in cp.literals:
            by_literal[literal.encode("utf-8")].append(i)
    by_literal[BLOB_MARKER.encode()].append(_BLOB)
    return AhoCorasickIndex({lit: tuple(ids) for lit, ids in by_literal.items()})


@dataclass(frozen=True)
class Hit:
    """A pattern matched ``text`` on line ``line_number`` (1-based); ``match_length`` in bytes."""

    pattern_index: int
    line_number: int
    text: str
    match_length: int


@dataclass
class ScanResult:
    """What a scan found: bounded per pattern, with the log's last lines for unknown failures.

    :param stopped: why the scan ended before the end of the text (``"deadline"``), or None.
    :param skipped_bytes: bytes at the start of the log that were not read (:data:`MAX_SCAN_BYTES`).
    :param line_numbers_exact: False when skipped lines of a file were not counted (line numbers then
        count from the first line read).
    """

    first_hits: dict[int, list[Hit]] = field(default_factory=dict)
    last_hits: dict[int, collections.deque[Hit | tuple[int, int, bytes, int]]] = field(default_factory=dict)
    counts: collections.Counter[int] = field(default_factory=collections.Counter)
    total_lines: int = 0
    tail: collections.deque[tuple[int, str]] = field(
        default_factory=lambda: collections.deque(maxlen=TAIL_LINES)
    )
    stopped: str | None = None
    skipped_bytes: int = 0
    line_numbers_exact: bool = True

    def add(self, hit: Hit) -> None:
        """Count a hit and keep it if it is among its pattern's first or last few."""
        self.counts[hit.pattern_index] += 1
        first = self.first_hits.setdefault(hit.pattern_index, [])
        if len(first) < HITS_KEPT_PER_PATTERN:
            first.append(hit)
            return
        last = self.last_hits.setdefault(hit.pattern_index, collections.deque(maxlen=HITS_KEPT_PER_PATTERN))
        last.append(hit)

    def record(self, pattern_index: int, line_number: int, line: bytes, match_length: int) -> None:
        """:meth:`add` for the matcher's hot loop: a later hit is kept raw (most are dropped again
        when a later one comes) and decoded only by :meth:`hits`."""
        self.counts[pattern_index] += 1
        first = self.first_hits.get(pattern_index)
        if first is None or len(first) < HITS_KEPT_PER_PATTERN:
            hit = Hit(pattern_index, line_number, _decode(line).strip(), match_length)
            self.first_hits.setdefault(pattern_index, []).append(hit)
            return
        last = self.last_hits.get(pattern_index)
        if last is None:
            last = self.last_hits[pattern_index] = collections.deque(maxlen=HITS_KEPT_PER_PATTERN)
        last.append((pattern_index, line_number, line, match_length))

    def hits(self) -> list[Hit]:
        """Kept hits of every pattern, in line order."""
        kept = [h for hits in self.first_hits.values() for h in hits]
        for hits in self.last_hits.values():
            kept.extend(
                h if isinstance(h, Hit) else Hit(h[0], h[1], _decode(h[2]).strip(), h[3]) for h in hits
            )
        return sorted(kept, key=lambda h: (h.line_number, h.pattern_index))

    @property
    def complete(self) -> bool:
        """Whether every byte of the log was scanned."""
        return self.stopped is None and not self.skipped_bytes


class Matcher:
    """A prefilter over ``patterns``, then their RE2 expressions on the candidate lines.

    :param patterns: the compiled patterns; hit ``pattern_index`` values index this sequence.
    :param index_kind: ``auto`` (Hyperscan when installed), ``cached``, ``hyperscan`` or ``pyahocorasick``
        (see :func:`build_index`).
    """

    def __init__(self, patterns: Sequence[CompiledPattern], index_kind: str = "auto") -> None:
        self.patterns = list(patterns)
        self.index = build_index(self.patterns, index_kind)
        self._linear: list[LinearPattern | None] = [None] * len(self.patterns)
        self._broken: set[int] = set()

    def scan_text(self, text: str, deadline: float | None = None) -> ScanResult:
        """Scan a string (its last :data:`MAX_SCAN_BYTES` when it is longer).

        :param text: the log.
        :param deadline: a :func:`time.monotonic` value after which the scan stops.
        """
        data = text.encode("utf-8", errors="surrogatepass")
        skipped = _cut_point(data)
        if not skipped:
            return self.scan_chunks(_split_chunks(data), deadline)
        lines_skipped = data.count(b"\n", 0, skipped)
        result = ScanResult(skipped_bytes=skipped)
        return self.scan_chunks(_split_chunks(data[skipped:]), deadline, result, lines_skipped)

    def scan_file(self, path: str | Path, deadline: float | None = None) -> ScanResult:
        """Scan a file of any size in bounded memory (undecodable bytes are replaced, not fatal).

        Of a regular file longer than :data:`MAX_SCAN_BYTES` only the end is read; its skipped lines
        are not counted.

        :param path: the log file.
        :param deadline: a :func:`time.monotonic` value after which the scan stops.
        """
        with open(path, "rb") as handle:
            result = ScanResult(skipped_bytes=_skip_head(handle))
            result.line_numbers_exact = not result.skipped_bytes
            return self.scan_chunks(_stream_chunks(handle), deadline, result)

    def scan_chunks(
        self,
        chunks: Iterable[bytes],
        deadline: float | None = None,
        result: ScanResult | None = None,
        line_base: int = 0,
    ) -> ScanResult:
        """Scan chunks that each end at a line boundary (except the last).

        :param chunks: the log's bytes.
        :param deadline: a :func:`time.monotonic` value after which the scan stops.
        :param result: the result to fill (a new one by default).
        :param line_base: lines before the first chunk.
        """
        result = result if result is not None else ScanResult()
        for chunk in chunks:
            if deadline is not None and time.monotonic() >= deadline:
                result.stopped = "deadline"
                break
            if chunk:
                line_base = self._scan_chunk(chunk, line_base, result, deadline)
            if result.stopped:
                break
        result.total_lines = line_base
        return result

    def _scan_chunk(self, chunk: bytes, line_base: int, result: ScanResult, deadline: float | None) -> int:
        """Scan one chunk; return the number of its last line (of the last line scanned when stopped)."""
        hits = self.index.find(chunk, deadline)
        if deadline is not None and time.monotonic() >= deadline:  # the prefilter may have stopped early
            result.stopped = "deadline"
            return line_base
        hits.sort()
        for start, stop, number, candidates in _lines_of(chunk, hits, line_base):
            self._confirm_line(chunk, start, stop, number, candidates, result)
            if deadline is not None and time.monotonic() >= deadline:
                result.stopped = "deadline"
                _keep_tail(chunk[:stop], number, result)
                return number
        last = line_base + chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
        _keep_tail(chunk, last, result)
        return last

    def _confirm_line(
        self,
        chunk: bytes,
        start: int,
        stop: int,
        number: int,
        candidates: dict[int, list[int]],
        result: ScanResult,
    ) -> None:
        """Run the RE2 expression of every candidate pattern on one line (or on windows of it)."""
        done: set[int] = set()
        if _BLOB in candidates:
            done = self._scan_blob(chunk[start:stop], number, result)
        if stop - start <= MAX_LINE_WINDOW:
            line = chunk[start:stop]
            for pattern_index in candidates:
                if pattern_index != _BLOB and pattern_index not in done:
                    self._try(pattern_index, line, number, result)
            return
        for pattern_index, ends in candidates.items():
            if pattern_index != _BLOB and pattern_index not in done:
                self._try_windows(pattern_index, chunk, start, stop, number, ends, result)

    def _try_windows(
        self,
        pattern_index: int,
        chunk: bytes,
        start: int,
        stop: int,
        number: int,
        ends: list[int],
        result: ScanResult,
    ) -> None:
        """Confirm a pattern on a long line, in windows around its prefilter hits (``ends``, increasing)."""
        half = MAX_LINE_WINDOW // 2
        covered = -1
        windows = 0
        for end in ends:
            if end < covered:
                continue
            low = max(start, end - half)
            covered = min(stop, end + half)
            if self._try(pattern_index, chunk[low:covered], number, result):
                return
            windows += 1
            if windows == MAX_WINDOWS_PER_LINE:
                return

    def _try(self, pattern_index: int, data: bytes, line_no: int, result: ScanResult) -> bool:
        """Confirm one pattern on one line or window; record the hit. Whether it matched."""
        linear = self._linear[pattern_index]
        if linear is None:
            linear = self._compile(pattern_index)
            if linear is None:
                return False
        span = linear.search(data)
        if span is None:
            return False
        result.record(pattern_index, line_no, data, span[1] - span[0])
        return True

    def _compile(self, pattern_index: int) -> LinearPattern | None:
        """Compile a pattern's RE2 form on its first candidate line (None: it cannot be, logged once)."""
        if pattern_index in self._broken:
            return None
        try:
            linear = self._linear[pattern_index] = self.patterns[pattern_index].linear
        except NotLinear as exc:  # only a pack loaded without verification can get here
            self._broken.add(pattern_index)
            log.warning(
                "pattern %s is skipped: RE2 cannot compile it: %s", self.patterns[pattern_index].id, exc
            )
            return None
        return linear

    def _scan_blob(self, line: bytes, number: int, result: ScanResult) -> set[int]:
        """Scan the messages inside an Ansible result blob; return the patterns tried there."""
        if len(line) > MAX_BLOB_LINE_BYTES:
            return set()
        tried: set[int] = set()
        matched: set[int] = set()
        for part in expand_line(_decode(line))[1:]:
            window = part.encode("utf-8", "replace")[:MAX_LINE_WINDOW]
            here = {i for _, ids in self.index.find(window) for i in ids if i != _BLOB}
            for pattern_index in sorted(here - matched):
                if self._try(pattern_index, window, number, result):
                    matched.add(pattern_index)
            tried |= here
        return tried


def _lines_of(
    chunk: bytes, hits: Hits, line_base: int
) -> Iterator[tuple[int, int, int, dict[int, list[int]]]]:
    """Group sorted hits by line: ``(start, stop, number, {pattern: [hit ends]})`` per line with hits.

    ``stop`` is the offset of the line's newline (or the chunk's end). Each line is found once, from
    the previous line's end, so every byte is looked at a bounded number of times however many hits
    a line has.
    """
    rfind, find, count = chunk.rfind, chunk.find, chunk.count
    number, counted, start, stop = line_base + 1, 0, 0, -1
    candidates: dict[int, list[int]] = {}
    for end, ids in hits:
        if end > stop:
            if candidates:
                yield start, stop, number, candidates
                candidates = {}
            start = rfind(b"\n", max(stop, 0), end) + 1
            stop = find(b"\n", end)
            stop = len(chunk) if stop < 0 else stop
            number += count(b"\n", counted, start)
            counted = start
        for pattern_index in ids:
            ends = candidates.get(pattern_index)
            if ends is None:
                candidates[pattern_index] = [end]
            else:
                ends.append(end)
    if candidates:
        yield start, stop, number, candidates


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _cut_point(data: bytes) -> int:
    """Where the scan of an over-long text starts: the first line boundary of its last
    :data:`MAX_SCAN_BYTES` (0 when it is not too long)."""
    if len(data) <= MAX_SCAN_BYTES:
        return 0
    cut = len(data) - MAX_SCAN_BYTES
    newline = data.find(b"\n", cut, cut + MAX_LINE_WINDOW)
    return newline + 1 if newline >= 0 else cut


def _skip_head(handle: BinaryIO) -> int:
    """Seek a regular file longer than :data:`MAX_SCAN_BYTES` to the first line boundary of its last
    :data:`MAX_SCAN_BYTES`; return the bytes skipped (0 for short files, pipes and terminals)."""
    try:
        size = os.fstat(handle.fileno()).st_size
        if size <= MAX_SCAN_BYTES or not handle.seekable():
            return 0
        handle.seek(size - MAX_SCAN_BYTES)
    except (OSError, ValueError):
        return 0
    head = handle.read(MAX_LINE_WINDOW)
    newline = head.find(b"\n")
    keep = newline + 1 if newline >= 0 else 0
    handle.seek(size - MAX_SCAN_BYTES + keep)
    return size - MAX_SCAN_BYTES + keep


def _keep_tail(chunk: bytes, last_no: int, result: ScanResult) -> None:
    """Keep the last lines of ``chunk``, whose last line is line ``last_no``."""
    lines = chunk[-(TAIL_LINES * 400) :].split(b"\n")
    if chunk.endswith(b"\n"):
        lines.pop()
    first_no = last_no - len(lines) + 1
    for offset in range(max(0, len(lines) - TAIL_LINES), len(lines)):
        result.tail.append((first_no + offset, _decode(lines[offset][:MAX_LINE_WINDOW])))


def _split_chunks(data: bytes) -> Iterator[bytes]:
    """Chunks of about CHUNK_BYTES of an in-memory text that end with a newline (except the last)."""
    start = 0
    while start < len(data):
        cut = data.rfind(b"\n", start, start + CHUNK_BYTES) if start + CHUNK_BYTES < len(data) else -1
        end = len(data) if cut < 0 else cut + 1
        if cut < 0 and start + CHUNK_BYTES < len(data):
            end = start + CHUNK_BYTES  # one enormous line: scan it in pieces
        yield data[start:end]
        start = end


def _stream_chunks(handle: BinaryIO) -> Iterator[bytes]:
    """Chunks of about CHUNK_BYTES read from a file, each ending with a newline (except the last)."""
    carry = b""
    while True:
        block = handle.read(CHUNK_BYTES)
        if not block:
            break
        block = carry + block
        cut = block.rfind(b"\n")
        if cut < 0:
            carry = block
            if len(carry) > 4 * CHUNK_BYTES:  # one enormous line: scan it in pieces
                yield carry
                carry = b""
            continue
        carry = block[cut + 1 :]
        yield block[: cut + 1]
    if carry:
        yield carry


__all__ = [
    "CHUNK_BYTES",
    "MAX_LINE_WINDOW",
    "MAX_SCAN_BYTES",
    "AhoCorasickIndex",
    "Hit",
    "HyperscanIndex",
    "Matcher",
    "PrefilterIndex",
    "ScanResult",
    "build_index",
    "cache_dir",
]
