"""Linear-time regular expressions: every regex the analyzer runs on log text is an RE2 expression.

RE2 (google-re2) runs in time linear in the text, whatever the expression, so no pattern and no log
line can make the analyzer backtrack for ever (``(a+)+$`` is harmless here). RE2 has no look-around;
a pattern that needs "not preceded by" or "not followed by" lists ``exclude`` expressions instead
(:class:`LinearPattern`). Linear is not always fast: a few RE2 expressions (large counted repetitions
of classes that overlap, such as ``(?:\\w+\\s*){1,400}``) run its slower NFA at hundreds of
milliseconds per 4 KiB line, so a user pattern is also timed on a few probe lines when it is loaded
(:func:`probe_seconds`) and refused above :data:`MAX_PROBE_SECONDS`.

Plain Python, no Airflow.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import re2

#: Memory RE2 may use per expression (compiled program and DFA cache); a larger program is refused.
RE2_MAX_MEM = 4 << 20
#: The most matches of one pattern looked at in one window when ``exclude`` rejects them.
MAX_MATCHES_TRIED = 32
#: Bytes of each probe line (the matcher's window on long lines has the same size).
PROBE_BYTES = 4096
#: The most seconds a pattern may take over all the probe lines (four lines of :data:`PROBE_BYTES`).
#: Ordinary patterns take well under a millisecond.
MAX_PROBE_SECONDS = 0.05
#: How many times a pattern over the limit is timed again before it is refused (a busy machine).
PROBE_RETRIES = 2
#: Patterns whose RE2 programs are all smaller than this are not timed: RE2's worst case is about the
#: program size times the text length, which is then far below :data:`MAX_PROBE_SECONDS` (measured:
#: under 0.3 ms for programs of 200 instructions, against the 50 ms limit).
PROBE_MIN_PROGRAM_SIZE = 200
#: ``RE2::UNANCHORED``, to call the compiled ``RE2::Match`` directly (None: use the public ``search``).
_UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)


class NotLinear(ValueError):
    """RE2 cannot compile an expression (look-around, back-reference, too large): its reason."""


def options(ignore_case: bool) -> re2.Options:
    """RE2 options for the analyzer's expressions.

    :param ignore_case: match without regard to case.
    """
    opts = re2.Options()
    opts.log_errors = False  # RE2 would print every refused pattern to stderr
    opts.max_mem = RE2_MAX_MEM
    opts.case_sensitive = not ignore_case
    return opts


def compile_linear(regex: str, ignore_case: bool = False) -> Any:
    """Compile ``regex`` with RE2; raise :class:`NotLinear` with RE2's reason when it cannot.

    :param regex: the expression (Python ``re`` syntax without look-around or back-references).
    :param ignore_case: match without regard to case.
    """
    try:
        return re2.compile(regex, options(ignore_case))
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise NotLinear(str(reason)) from None


@dataclass(frozen=True)
class LinearPattern:
    """A pattern's RE2 expression and its ``exclude`` expressions.

    A match of ``regex`` counts unless a match of one of ``excludes`` overlaps it: ``exclude`` says
    what look-around would have said (``(?<!skipped: )already exists`` becomes ``already exists``
    with ``exclude: ['skipped: already exists']``).

    :param regex: the compiled expression.
    :param excludes: compiled expressions whose matches veto the matches they overlap.
    """

    regex: Any
    excludes: tuple[Any, ...] = ()
    _native: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # google-re2's search() builds a generator and a match object per call (a few microseconds,
        # paid on every candidate line); the compiled RE2::Match returns the spans directly.
        if _UNANCHORED is not None:
            object.__setattr__(self, "_native", getattr(self.regex, "_regexp", None))

    @classmethod
    def compile(cls, regex: str, excludes: Sequence[str] = (), ignore_case: bool = False) -> LinearPattern:
        """Compile a pattern; :class:`NotLinear` names the part RE2 refused.

        :param regex: the expression.
        :param excludes: the ``exclude`` expressions.
        :param ignore_case: match without regard to case (all expressions).
        """
        compiled = compile_linear(regex, ignore_case)
        vetoes = []
        for number, exclude in enumerate(excludes):
            try:
                vetoes.append(compile_linear(exclude, ignore_case))
            except NotLinear as exc:
                raise NotLinear(f"exclude[{number}]: {exc}") from None
        return cls(compiled, tuple(vetoes))

    @property
    def program_size(self) -> int:
        """The largest RE2 program (instructions) of the regex and its excludes."""
        return max(getattr(rx, "programsize", PROBE_MIN_PROGRAM_SIZE) for rx in (self.regex, *self.excludes))

    def search(self, data: bytes) -> tuple[int, int] | None:
        """The span of the first match in ``data`` that no ``exclude`` match overlaps, or None.

        :param data: one line or one window of a long line (UTF-8).
        """
        native = self._native
        if native is not None and not self.excludes:
            span = native.Match(_UNANCHORED, data, 0, len(data))[0]
            return None if span[0] == -1 else span
        match = self.regex.search(data)
        if match is None or not self.excludes:
            return None if match is None else match.span()
        vetoed = self._vetoed_spans(data)
        for _ in range(MAX_MATCHES_TRIED):
            start, end = match.span()
            if not any(v_start < end and start < v_end for v_start, v_end in vetoed):
                return start, end
            match = self.regex.search(data, _next_char(data, start))
            if match is None:
                return None
        return None

    def _vetoed_spans(self, data: bytes) -> list[tuple[int, int]]:
        spans: list[tuple[int, int]] = []
        for exclude in self.excludes:
            for number, match in enumerate(exclude.finditer(data)):
                if number == MAX_MATCHES_TRIED:
                    break
                spans.append(match.span())
        return spans


def _next_char(data: bytes, offset: int) -> int:
    """The offset of the UTF-8 character after the one at ``offset``."""
    offset += 1
    while offset < len(data) and data[offset] & 0xC0 == 0x80:
        offset += 1
    return offset


def probe_lines(literals: Sequence[str]) -> list[bytes]:
    """Lines that make slow RE2 expressions show: one letter repeated, many short words, and the
    pattern's own literals over and over (so its prefix matches everywhere).

    :param literals: the pattern's prefilter literals.
    """
    stuffed = " ".join(literals or ["x"]) + " 1: "
    repeats = PROBE_BYTES // len(stuffed) + 1
    return [
        *_fixed_probes(),
        (stuffed * repeats).encode("utf-8", "replace")[:PROBE_BYTES],
        (stuffed.replace(" ", "") * repeats).encode("utf-8", "replace")[:PROBE_BYTES],
    ]


@functools.cache
def _fixed_probes() -> tuple[bytes, bytes]:
    words = " ".join(
        "".join("abcdefghij"[(i * 7 + j * 3) % 10] for j in range(1 + i % 8)) for i in range(PROBE_BYTES // 3)
    )
    return b"a" * PROBE_BYTES, words.encode()[:PROBE_BYTES]


def probe_seconds(pattern: LinearPattern, literals: Sequence[str]) -> float:
    """Seconds ``pattern`` takes over the probe lines: the least of a few timings when the first is
    over :data:`MAX_PROBE_SECONDS` (a busy machine slows every run; a slow pattern is slow every time).
    0 for a pattern too small to be slow (:data:`PROBE_MIN_PROGRAM_SIZE`).

    :param pattern: the compiled pattern.
    :param literals: its prefilter literals (they make one of the probe lines).
    """
    if pattern.program_size < PROBE_MIN_PROGRAM_SIZE:
        return 0.0
    lines = probe_lines(literals)
    best = float("inf")
    for _ in range(1 + PROBE_RETRIES):
        start = time.perf_counter()
        for line in lines:
            pattern.search(line)
        best = min(best, time.perf_counter() - start)
        if best <= MAX_PROBE_SECONDS:
            break
    return best


__all__ = [
    "MAX_PROBE_SECONDS",
    "PROBE_BYTES",
    "RE2_MAX_MEM",
    "LinearPattern",
    "NotLinear",
    "compile_linear",
    "options",
    "probe_lines",
    "probe_seconds",
]
