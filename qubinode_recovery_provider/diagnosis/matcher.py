"""Find every known-error pattern in a log with one pass over its bytes.

Where Hyperscan is available (x86-64 wheels), one Hyperscan database holds every pattern's regex in
prefilter mode: it reports, in C, the lines where a pattern can match, and Python ``re`` confirms the
pattern on those lines only. Elsewhere the required literals of every pattern (see :mod:`.literals`)
form a pyahocorasick automaton that does the same job more slowly. Logs are read in chunks that end
at a line boundary, so memory stays bounded whatever the size of the log, and time is linear in its
size. The techniques and the alternatives they were chosen over are timed by
``bench/bench_analyzer.py``.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol

from qubinode_recovery_provider.diagnosis.preprocess import BLOB_MARKER, expand_line

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis.patterns import CompiledPattern

log = logging.getLogger(__name__)

CHUNK_BYTES = 4 * 1024 * 1024
MAX_LINE_WINDOW = 4096  # bytes of a very long line searched around a literal hit
HITS_KEPT_PER_PATTERN = 3  # first and last occurrences of each pattern are kept
TAIL_LINES = 60
_BLOB = -1
HYPERSCAN_CACHE_VERSION = 1


class PrefilterIndex(Protocol):
    """Finds, in bytes, the places where a pattern can match (a superset: ``re`` confirms them)."""

    kind: str

    def find(self, data: bytes) -> Iterable[tuple[int, tuple[int, ...]]]:
        """Yield ``(end_offset_exclusive, pattern_ids)`` for every candidate, in any order."""


class HyperscanIndex:
    """Hyperscan block-mode database: every ASCII pattern's whole regex in prefilter mode (a superset
    of its matches, confirmed per line by Python ``re``), plus plain literals for patterns with
    non-ASCII text and for the Ansible blob marker. It reports only lines that can match, in C at
    about 1 GB/s. Compiling the database takes about a second, so it is cached on disk, keyed by the
    expressions (see :func:`cache_dir`)."""

    kind = "hyperscan"

    def __init__(self, patterns: Sequence[CompiledPattern], extra: dict[bytes, tuple[int, ...]]) -> None:
        import hyperscan

        expressions: list[bytes] = []
        flags: list[int] = []
        self._ids: list[tuple[int, ...]] = []
        literal_flag = hyperscan.HS_FLAG_CASELESS
        regex_base = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_MULTILINE | hyperscan.HS_FLAG_ALLOWEMPTY
        for index, cp in enumerate(patterns):
            if cp.pattern.regex.isascii():
                expressions.append(cp.pattern.regex.encode("ascii"))
                flags.append(regex_base | (hyperscan.HS_FLAG_CASELESS if cp.pattern.ignore_case else 0))
                self._ids.append((index,))
                continue
            for literal in cp.literals:
                expressions.append(_escaped(literal.encode("utf-8")))
                flags.append(literal_flag)
                self._ids.append((index,))
        for literal, ids in extra.items():
            expressions.append(_escaped(literal))
            flags.append(literal_flag)
            self._ids.append(ids)
        self._db = _hyperscan_database(hyperscan, expressions, flags)
        self._lock = threading.Lock()

    def find(self, data: bytes) -> list[tuple[int, tuple[int, ...]]]:
        found: list[tuple[int, tuple[int, ...]]] = []
        ids = self._ids

        def on_match(expr_id: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
            found.append((end, ids[expr_id]))

        with self._lock:  # one scratch space per database: scans are serialised
            self._db.scan(data, match_event_handler=on_match)
        return found


def _escaped(literal: bytes) -> bytes:
    return b"".join(b"\\x%02x" % byte for byte in literal)


def cache_dir() -> Path | None:
    """Where compiled Hyperscan databases are kept: ``$QUBINODE_RECOVERY_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/qubinode-recovery`` or ``~/.cache/qubinode-recovery``; None to disable."""
    configured = os.environ.get("QUBINODE_RECOVERY_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qubinode-recovery"


def _hyperscan_database(hyperscan: Any, expressions: list[bytes], flags: list[int]) -> Any:
    digest = hashlib.sha256(repr((HYPERSCAN_CACHE_VERSION, expressions, flags)).encode()).hexdigest()[:32]
    directory = cache_dir()
    path = directory / f"hs-{digest}.db" if directory else None
    if path is not None and _trusted(path):
        try:
            db = hyperscan.loadb(path.read_bytes(), hyperscan.HS_MODE_BLOCK)
            db.scratch = hyperscan.Scratch(db)  # a loaded database comes without scratch space
            return db
        except Exception as exc:  # a damaged cache file: rebuild it
            log.warning("ignoring unreadable pattern cache %s: %s", path, exc)
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    db.compile(
        expressions=expressions, ids=list(range(len(expressions))), elements=len(expressions), flags=flags
    )
    if path is not None:
        _write_atomically(path, hyperscan.dumpb(db))
    return db


def _trusted(path: Path) -> bool:
    """Load only a cache file this user owns that nobody else can write: a compiled database is
    native code's input, so a file planted in a shared directory is never read."""
    try:
        info = path.stat()
    except OSError:
        return False
    return info.st_uid == os.getuid() and not info.st_mode & 0o022


def _write_atomically(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:  # a read-only home is fine: the database is just not cached
        log.info("pattern cache not written (%s): %s", path, exc)


class AhoCorasickIndex:
    """Portable literal index: pyahocorasick over the bytes seen as Latin-1 (one char per byte)."""

    kind = "pyahocorasick"

    def __init__(self, literals: dict[bytes, tuple[int, ...]]) -> None:
        import ahocorasick

        self._automaton = ahocorasick.Automaton()
        for literal, ids in literals.items():
            self._automaton.add_word(literal.decode("latin-1").lower(), ids)
        self._automaton.make_automaton()

    def find(self, data: bytes) -> Iterator[tuple[int, tuple[int, ...]]]:
        # Latin-1 lower() keeps every character's length, so offsets stay byte offsets.
        for end, ids in self._automaton.iter(data.decode("latin-1").lower()):
            yield end + 1, ids


def build_index(patterns: Sequence[CompiledPattern], kind: str = "auto") -> PrefilterIndex:
    """The fastest prefilter available (``kind``: auto, hyperscan or pyahocorasick)."""
    blob = {BLOB_MARKER.encode(): (_BLOB,)}
    if kind in ("auto", "hyperscan"):
        try:
            return HyperscanIndex(patterns, blob)
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
    """A pattern matched ``text`` on line ``line_number`` (1-based)."""

    pattern_index: int
    line_number: int
    text: str
    match_length: int


@dataclass
class ScanResult:
    """What a scan found: bounded per pattern, with the log's last lines for unknown failures."""

    first_hits: dict[int, list[Hit]] = field(default_factory=dict)
    last_hits: dict[int, collections.deque[Hit]] = field(default_factory=dict)
    counts: collections.Counter[int] = field(default_factory=collections.Counter)
    total_lines: int = 0
    tail: collections.deque[tuple[int, str]] = field(
        default_factory=lambda: collections.deque(maxlen=TAIL_LINES)
    )

    def add(self, hit: Hit) -> None:
        self.counts[hit.pattern_index] += 1
        first = self.first_hits.setdefault(hit.pattern_index, [])
        if len(first) < HITS_KEPT_PER_PATTERN:
            first.append(hit)
            return
        last = self.last_hits.setdefault(hit.pattern_index, collections.deque(maxlen=HITS_KEPT_PER_PATTERN))
        last.append(hit)

    def hits(self) -> list[Hit]:
        """Kept hits of every pattern, in line order."""
        kept = [h for hits in self.first_hits.values() for h in hits]
        kept.extend(h for hits in self.last_hits.values() for h in hits)
        return sorted(kept, key=lambda h: (h.line_number, h.pattern_index))


class Matcher:
    """A literal prefilter over ``patterns``, then their regexes on the candidate lines.

    :param patterns: the compiled patterns; hit ``pattern_index`` values index this sequence.
    :param index_kind: ``auto`` (Hyperscan when installed), ``hyperscan`` or ``pyahocorasick``.
    """

    def __init__(self, patterns: Sequence[CompiledPattern], index_kind: str = "auto") -> None:
        self.patterns = list(patterns)
        self.index = build_index(self.patterns, index_kind)
        self._broken: set[int] = set()

    def scan_text(self, text: str) -> ScanResult:
        """Scan a string."""
        return self.scan_chunks(_split_chunks(text.encode("utf-8", errors="surrogatepass")))

    def scan_file(self, path: str | Path) -> ScanResult:
        """Scan a file of any size in bounded memory (undecodable bytes are replaced, not fatal)."""
        with open(path, "rb") as handle:
            return self.scan_chunks(_stream_chunks(handle))

    def scan_chunks(self, chunks: Iterable[bytes]) -> ScanResult:
        result = ScanResult()
        line_base = 0
        for chunk in chunks:
            if chunk:
                line_base = self._scan_chunk(chunk, line_base, result)
        result.total_lines = line_base
        return result

    def _scan_chunk(self, chunk: bytes, line_base: int, result: ScanResult) -> int:
        tried: set[tuple[int, int]] = set()
        line_numbers = _LineNumbers(chunk, line_base)
        for end, ids in sorted(self.index.find(chunk)):
            start = chunk.rfind(b"\n", 0, end) + 1
            stop = chunk.find(b"\n", end)
            stop = len(chunk) if stop < 0 else stop
            line_no = line_numbers.of(start)
            for pattern_index in ids:
                if (start, pattern_index) in tried:
                    continue
                tried.add((start, pattern_index))
                if pattern_index == _BLOB:
                    matched = self._scan_blob(_decode(chunk[start:stop]), line_no, result)
                    tried.update((start, i) for i in matched)
                else:
                    self._try(pattern_index, _decode(_window(chunk, start, stop, end)), line_no, result)
        _keep_tail(chunk, line_base, result)
        return line_base + chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)

    def _try(self, pattern_index: int, text: str, line_no: int, result: ScanResult) -> None:
        try:
            regex = self.patterns[pattern_index].regex
        except re.error as exc:  # only a pack that skipped `patterns check` can get here
            if pattern_index not in self._broken:
                self._broken.add(pattern_index)
                log.warning(
                    "pattern %s is skipped: its regex does not compile: %s",
                    self.patterns[pattern_index].id,
                    exc,
                )
            return
        match = regex.search(text)
        if match is not None:
            result.add(Hit(pattern_index, line_no, text.strip(), match.end() - match.start()))

    def _scan_blob(self, line: str, line_no: int, result: ScanResult) -> set[int]:
        """Scan the messages inside an Ansible result blob; return the patterns tried there."""
        tried: set[int] = set()
        for part in expand_line(line)[1:]:
            window = part[:MAX_LINE_WINDOW]
            here = {
                i for _, ids in self.index.find(window.encode("utf-8", "replace")) for i in ids if i != _BLOB
            }
            for pattern_index in sorted(here):
                self._try(pattern_index, window, line_no, result)
            tried |= here
        return tried


class _LineNumbers:
    """1-based line numbers of offsets in a chunk, counted incrementally (offsets come sorted)."""

    def __init__(self, chunk: bytes, line_base: int) -> None:
        self._chunk = chunk
        self._offset = 0
        self._line = line_base + 1

    def of(self, offset: int) -> int:
        self._line += self._chunk.count(b"\n", self._offset, offset)
        self._offset = offset
        return self._line


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _window(chunk: bytes, start: int, stop: int, hit: int) -> bytes:
    if stop - start <= MAX_LINE_WINDOW:
        return chunk[start:stop]
    half = MAX_LINE_WINDOW // 2
    return chunk[max(start, hit - half) : min(stop, hit + half)]


def _keep_tail(chunk: bytes, line_base: int, result: ScanResult) -> None:
    lines = chunk[-(TAIL_LINES * 400) :].split(b"\n")
    if chunk.endswith(b"\n"):
        lines.pop()
    last_no = line_base + chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
    first_no = last_no - len(lines) + 1
    for offset in range(max(0, len(lines) - TAIL_LINES), len(lines)):
        result.tail.append((first_no + offset, _decode(lines[offset])))


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
