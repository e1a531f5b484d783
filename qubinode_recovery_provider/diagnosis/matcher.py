"""Find every known-error pattern in a log with one pass over the text.

One Aho-Corasick automaton holds the required literals of every pattern (see :mod:`.literals`). A scan
lower-cases a chunk of the log, runs the automaton over it in C, and runs a pattern's regex only on the
lines where one of its literals occurs. Logs are read in chunks that end at a line boundary, so memory
stays bounded whatever the size of the log, and the time is linear in its size. The benchmark in
``bench/bench_analyzer.py`` compares this with running each regex over the whole text.
"""

from __future__ import annotations

import collections
import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import ahocorasick

from qubinode_recovery_provider.diagnosis.preprocess import BLOB_MARKER, expand_line

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis.patterns import CompiledPattern

CHUNK_CHARS = 4 * 1024 * 1024
MAX_LINE_WINDOW = 4096  # characters of a very long line searched around a literal hit
HITS_KEPT_PER_PATTERN = 3  # first and last occurrences of each pattern are kept
TAIL_LINES = 60
_BLOB = -1


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
    """An Aho-Corasick prefilter over the literals of ``patterns``, then their regexes per line."""

    def __init__(self, patterns: Sequence[CompiledPattern]) -> None:
        self.patterns = list(patterns)
        index: dict[str, list[int]] = collections.defaultdict(list)
        for i, cp in enumerate(self.patterns):
            for literal in cp.literals:
                index[literal].append(i)
        index[BLOB_MARKER].append(_BLOB)
        self._automaton = ahocorasick.Automaton()
        for literal, ids in index.items():
            self._automaton.add_word(literal, tuple(ids))
        self._automaton.make_automaton()

    def scan_text(self, text: str) -> ScanResult:
        """Scan a string."""
        return self.scan_chunks(_text_chunks(text))

    def scan_file(self, path: str | Path) -> ScanResult:
        """Scan a file of any size in bounded memory (undecodable bytes are replaced, not fatal)."""
        with open(path, encoding="utf-8", errors="replace", newline="") as handle:
            return self.scan_chunks(_stream_chunks(handle))

    def scan_chunks(self, chunks: Iterable[str]) -> ScanResult:
        result = ScanResult()
        line_base = 0
        for chunk in chunks:
            if chunk:
                line_base = self._scan_chunk(chunk, line_base, result)
        result.total_lines = line_base
        return result

    def _scan_chunk(self, chunk: str, line_base: int, result: ScanResult) -> int:
        lowered = chunk.lower()
        if len(lowered) != len(chunk):  # rare: case folding changed lengths; keep offsets aligned
            lowered = "".join(c if len(c.lower()) != 1 else c.lower() for c in chunk)
        seen: set[tuple[int, int]] = set()
        cursor, line_no = 0, line_base + 1
        line_start, line_end = -1, -1
        for end, ids in self._automaton.iter(lowered):
            if end >= line_end:
                line_start = chunk.rfind("\n", 0, end) + 1
                line_no += chunk.count("\n", cursor, line_start)
                cursor = line_start
                line_end = chunk.find("\n", end)
                if line_end < 0:
                    line_end = len(chunk)
            for pattern_index in ids:
                if (line_start, pattern_index) in seen:
                    continue
                seen.add((line_start, pattern_index))
                if pattern_index == _BLOB:
                    self._scan_blob(chunk[line_start:line_end], line_no, result)
                else:
                    window = _window(chunk, line_start, line_end, end)
                    self._try(pattern_index, window, line_no, result)
        self._keep_tail(chunk, line_base, result)
        return line_base + chunk.count("\n") + (0 if chunk.endswith("\n") else 1)

    def _try(self, pattern_index: int, text: str, line_no: int, result: ScanResult) -> None:
        match = self.patterns[pattern_index].regex.search(text)
        if match is not None:
            result.add(Hit(pattern_index, line_no, text.strip(), match.end() - match.start()))

    def _scan_blob(self, line: str, line_no: int, result: ScanResult) -> None:
        for part in expand_line(line)[1:]:
            tried: set[int] = set()
            for _end, ids in self._automaton.iter(part.lower()):
                for pattern_index in ids:
                    if pattern_index != _BLOB and pattern_index not in tried:
                        tried.add(pattern_index)
                        self._try(pattern_index, part[:MAX_LINE_WINDOW], line_no, result)

    @staticmethod
    def _keep_tail(chunk: str, line_base: int, result: ScanResult) -> None:
        lines = chunk[-(TAIL_LINES * 400) :].split("\n")
        if chunk.endswith("\n"):
            lines.pop()
        last_no = line_base + chunk.count("\n") + (0 if chunk.endswith("\n") else 1)
        first_no = last_no - len(lines) + 1
        for offset, line in enumerate(lines[-TAIL_LINES:], start=max(0, len(lines) - TAIL_LINES)):
            result.tail.append((first_no + offset, line))


def _window(chunk: str, start: int, end: int, hit: int) -> str:
    if end - start <= MAX_LINE_WINDOW:
        return chunk[start:end]
    half = MAX_LINE_WINDOW // 2
    return chunk[max(start, hit - half) : min(end, hit + half)]


def _text_chunks(text: str) -> Iterator[str]:
    if len(text) <= CHUNK_CHARS:
        yield text
        return
    yield from _stream_chunks(io.StringIO(text))


def _stream_chunks(handle: io.TextIOBase) -> Iterator[str]:
    """Chunks of about CHUNK_CHARS that end with a newline (except the last)."""
    carry = ""
    while True:
        block = handle.read(CHUNK_CHARS)
        if not block:
            break
        block = carry + block
        cut = block.rfind("\n")
        if cut < 0:
            carry = block
            if len(carry) > 4 * CHUNK_CHARS:  # one enormous line: scan it in pieces
                yield carry
                carry = ""
            continue
        carry = block[cut + 1 :]
        yield block[: cut + 1]
    if carry:
        yield carry
