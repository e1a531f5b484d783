"""Stable fingerprints: the same failure gets the same fingerprint in every run.

The variable parts of a line (timestamps, UUIDs, IP and MAC addresses, hex ids, numbers, temporary
paths, Airflow run ids and the VM names built from them) are replaced by named tokens, in the
order of one table, as Sentry's message parameterization does. The fingerprint hashes the root cause,
the decisive pattern id and the masked line, so it does not change with the run, the host or the time.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

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

_WHITESPACE = re.compile(r"\s+")
_LEADING_NOISE = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*|\{[^}]*\}\s*|<[^>]*>\s*|(?:DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL)\b[:\s-]*)+"
)
MAX_TEMPLATE_LENGTH = 300


def mask(line: str) -> str:
    """Replace the variable parts of ``line`` with ``<name>`` tokens."""
    masked = line
    for name, regex in MASKS:
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
