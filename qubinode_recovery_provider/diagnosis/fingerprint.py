"""Stable fingerprints: the same failure gets the same fingerprint in every run.

The variable parts of a line (timestamps, UUIDs, IP and MAC addresses, hex ids, numbers, temporary
paths, Airflow run ids and the VM names built from them) are replaced by named tokens, in the
order of one table, as Sentry's message parameterization does. The fingerprint hashes the root cause,
the decisive pattern id and the masked line, so it does not change with the run, the host or the time.

The table is Python ``re`` (fingerprints stored in ledgers must not change), but the two masks that
backtrack quadratically on hostile text (``url`` and ``email``: 0.2 s on 4 KiB of ``a-a-a-...``) run
as RE2 over an ASCII view of the line that gives every character the same class (word, space, other)
that Python's Unicode-aware ``re`` gives it, so they find exactly the same matches in linear time. The
other masks are linear in practice (bounded repetitions behind a literal or a word boundary), and their
input is a matched line or window of at most 4 KiB.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from qubinode_recovery_provider.diagnosis.linear import compile_linear

# Order matters: the most specific shapes go first, plain numbers last.
MASKS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "run_id",
        re.compile(
            r"\b(?:manual|scheduled|backfill|dataset_triggered|asset_triggered)__"
            r"\d{4}-\d\d-\d\dT[\d:.+\-]+(?:_[A-Za-z0-9]+)?"
        ),
    ),
    ("url", re.compile(r"\b[a-z][a-z0-9+.\-]*://[^\s'\"<>]+", re.IGNORECASE)),
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")),
    ("uuid", re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)),
    ("mac", re.compile(r"\b(?:[0-9a-f]{2}[:-]){5}[0-9a-f]{2}\b", re.IGNORECASE)),
    (
        "ipv6",
        re.compile(
            r"(?<![\w:])(?:(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}"
            r"|(?:[0-9a-f]{1,4}:)*[0-9a-f]{0,4}::(?:[0-9a-f]{1,4}:)*[0-9a-f]{1,4})(?![\w:])",
            re.IGNORECASE,
        ),
    ),
    (
        "iso_datetime",
        re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d:?\d\d)?"),
    ),
    ("date", re.compile(r"\b\d{4}[/-]\d\d[/-]\d\d\b|\b\d\d/\d\d/\d{4}\b")),
    (
        "syslog_time",
        re.compile(r"\b(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\s+\d{1,2}\s+\d\d:\d\d:\d\d\b"),
    ),
    ("time", re.compile(r"\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b")),
    ("ipv4", re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b")),
    ("tmp_path", re.compile(r"(?:/var)?/tmp/[^\s'\":,)]+")),
    ("sha", re.compile(r"\b(?:sha256:)?[0-9a-f]{32,}\b", re.IGNORECASE)),
    ("hex", re.compile(r"\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b", re.IGNORECASE)),
    ("run_suffix", re.compile(r"(?<=[A-Za-z])[-_](?:[0-9a-f]{6,}|\d{4,})\b", re.IGNORECASE)),
    ("number", re.compile(r"(?<![A-Za-z])[-+]?\d+(?:\.\d+)?")),
)

#: RE2 forms of the masks whose Python form can backtrack quadratically (same matches, see above).
_LINEAR_MASKS = {
    "url": compile_linear(r"\b[a-z][a-z0-9+.\-]*://[^\s'\"<>]+", ignore_case=True),
    "email": compile_linear(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"),
}
#: Characters outside ASCII that Python's case-insensitive ``[a-z]`` matches (they fold to a letter).
_FOLDS = {0x130: ord("i"), 0x131: ord("i"), 0x17F: ord("s"), 0x212A: ord("k")}
_VIEW_CACHE_LIMIT = 65536


class _AsciiView(dict[int, int]):
    """A :meth:`str.translate` table: each character to one ASCII character of the same class for
    the ``url`` and ``email`` masks (Python word characters to ``_``, spaces to a space, the rest to
    ``!``). One character for one keeps every offset."""

    def __missing__(self, code: int) -> int:
        char = chr(code)
        if code in _FOLDS:
            value = _FOLDS[code]
        elif char.isspace():
            value = 0x20
        elif char.isalnum():
            value = ord("_")
        else:
            value = ord("!")
        if len(self) < _VIEW_CACHE_LIMIT:
            self[code] = value
        return value


# ASCII maps to itself, except the spaces Python's \s knows and RE2's does not (\v, \x1c-\x1f).
_ASCII_VIEW = _AsciiView(
    {code: code for code in range(128)} | {code: 0x20 for code in (0x0B, 0x1C, 0x1D, 0x1E, 0x1F)}
)


def _linear_sub(regex: object, token: str, text: str) -> str:
    """``re.sub(token, text)`` with an RE2 expression matched on the ASCII view of ``text``."""
    view = text.translate(_ASCII_VIEW)
    pieces: list[str] = []
    last = 0
    for match in regex.finditer(view):  # type: ignore[attr-defined]
        start, end = match.span()
        pieces.append(text[last:start])
        pieces.append(token)
        last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


_WHITESPACE = re.compile(r"\s+")
_LEADING_NOISE = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*|\{[^}]*\}\s*|<[^>]*>\s*|(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b[:\s-]*)+"
)
MAX_TEMPLATE_LENGTH = 300


def mask(line: str) -> str:
    """Replace the variable parts of ``line`` with ``<name>`` tokens."""
    masked = line
    for name, regex in MASKS:
        linear = _LINEAR_MASKS.get(name)
        if linear is not None:
            masked = _linear_sub(linear, f"<{name}>", masked)
        else:
            masked = regex.sub(f"<{name}>", masked)
    return masked


def template(line: str) -> str:
    """The masked form of a log line, without the log-prefix noise, whitespace folded."""
    masked = mask(line.strip())
    masked = _LEADING_NOISE.sub("", masked)
    masked = _WHITESPACE.sub(" ", masked).strip()
    return masked[:MAX_TEMPLATE_LENGTH]


def fingerprint(root_cause: str, pattern_ids: Iterable[str], decisive_template: str) -> str:
    """A 16-hex-digit fingerprint of a failure."""
    key = "|".join([root_cause, ",".join(pattern_ids), decisive_template])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
