"""Redaction speed: the RE2 rules against the Python ``re`` rules they replaced.

    python bench/bench_redaction.py             # writes bench/results/redaction.json
    python bench/bench_redaction.py --quick     # fewer repeats, old rules on smaller inputs only

Inputs: an ordinary 1 MB task log (the analyzer benchmark's noisy log with one secret-bearing line in
every hundred) and the hostile inputs of the redaction tests: an 80 KB JWT-shaped line, a 40 KB
``key=`` assignment behind a long name, a 30 KB hex dump holding the word ``key``, a 4 MB line full of
``password=`` hits (behind long names, and packed), 1 MB of nested quotes and a 4 MB private-key body.

The new rules run in this process (median of several runs). The old rules (copied below as they were
before the RE2 rewrite) run in a child process per input with a time limit, first on an eighth of
the input, then a quarter, a half and the whole, stopping at the first size that does not finish:
the sizes that finished show how the old time grows.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_analyzer import noisy_log
from qubinode_recovery_provider import redaction

RESULTS = Path(__file__).resolve().parent / "results"

# --- the rules before the RE2 rewrite (qubinode_recovery_provider/redaction.py at 382b7c5) ----------

_OLD_NAMES = (
    r"pass(?:word|wd|phrase)?|pwd|secret(?:[_-]?key)?|client[_-]?secret|api[_-]?key|apikey|"
    r"access[_-]?key(?:[_-]?id)?|secret[_-]?access[_-]?key|private[_-]?key|auth[_-]?token|"
    r"access[_-]?token|refresh[_-]?token|id[_-]?token|session[_-]?token|token|credentials?|"
    r"vault[_-]?token|become[_-]?pass|ansible[_-]?(?:become|ssh)?[_-]?pass(?:word)?"
)
OLD_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----.*?(?:-----END \1-----|\Z)", re.DOTALL
        ),
        r"-----BEGIN \1-----***-----END \1-----",
    ),
    (re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@'\"]*:)[^\s@/'\"]+@"), r"\1***@"),
    (
        re.compile(
            r"\b((?:proxy-)?authorization\b['\"]?\s*[:=]\s*['\"]?(?:(?:bearer|basic|token|digest|negotiate)\s+)?)"
            r"[^\s'\",;]+",
            re.IGNORECASE,
        ),
        r"\1***",
    ),
    (
        re.compile(
            r"\b((?:x-vault-token|x-api-key|x-auth-token|private-token|x-github-token)['\"]?\s*[:=]\s*['\"]?)"
            r"[^\s'\",;]+",
            re.IGNORECASE,
        ),
        r"\1***",
    ),
    (re.compile(r"\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", re.IGNORECASE), r"\1***"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}"), "***"),
    (re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{40,255})\b"), "***"),
    (re.compile(r"\bhv[sbr]\.[A-Za-z0-9_-]{20,}"), "***"),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"), "***"),
    (re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"), "***"),
    (
        re.compile(r"(--(?:" + _OLD_NAMES + r")(?:=|\s+))(?!\*\*\*)(['\"]?)[^\s'\"]+\2", re.IGNORECASE),
        r"\1\2***\2",
    ),
    (re.compile(r"\b(sshpass\s+-p\s*)(['\"]?)[^\s'\"]+\2"), r"\1\2***\2"),
    (
        re.compile(
            r"((?<![A-Za-z0-9])['\"]?(?:[A-Za-z0-9]+[_-])*(?:" + _OLD_NAMES + r")['\"]?\s*(?:=|:(?!//))\s*)"
            r"(?!\*\*\*)(?:\"[^\"]*\"|'[^']*'|[^\s,;}\])]+)",
            re.IGNORECASE,
        ),
        r"\1***",
    ),
)
_OLD_TRIGGERS = (
    "private key", "@", "author", "token", "bearer", "eyj", "ghp_", "gho_", "ghu_", "ghs_", "ghr_",
    "github_pat_", "hvs.", "hvb.", "hvr.", "xox", "pass", "pwd", "secret", "key", "credential",
)  # fmt: skip
_OLD_AWS = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA")


def old_redact(text: str) -> str:
    """The redaction as it was: every rule's ``re.sub`` over the whole text, in order."""
    lower = text.lower()
    if not any(t in lower for t in _OLD_TRIGGERS) and not any(p in text for p in _OLD_AWS):
        return text
    for pattern, replacement in OLD_RULES:
        text = pattern.sub(replacement, text)
    return text


# --- inputs -------------------------------------------------------------------------------------------

SECRET_LINES = (
    "PGPASSWORD=Zq8xPmT3vR psql -h db.lab -U airflow",
    "curl -fsS -u deploy:Wn4kP9sLq2 https://nexus.lab/repository/raw/",
    '{"username": "svc", "password": "Tr0ub4dor&3", "host": "db.lab"}',
    "X-Vault-Token: hvs.CAESIJlWb3RlIGZvciB0aGUgdGVzdHMgb25seQ",
    "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
    "mysql -h db.lab -u root -pHx7Lm2Qa airflow",
    "fatal: unable to access 'https://deploy:p@ss-9f3a@git.lab/infra.git/': error: 403",
)


def ordinary_log(size: int) -> str:
    """The analyzer benchmark's noisy log, one line in a hundred replaced by a line with a secret."""
    lines = noisy_log(size).splitlines()
    for i in range(50, len(lines), 100):
        lines[i] = SECRET_LINES[(i // 100) % len(SECRET_LINES)]
    return "\n".join(lines) + "\n"


def _repeat(unit: str, size: int) -> str:
    return unit * max(1, size // len(unit))


INPUTS: dict[str, tuple[int, Callable[[int], str]]] = {
    "ordinary_log_1MB": (1_000_000, ordinary_log),
    "jwt_shaped_line_80KB": (80_000, lambda n: "eyJhbGciOiJIUzI1NiJ9." + _repeat("eyJ-", n - 21)),
    "key_assignment_40KB": (40_000, lambda n: "a_" * ((n - 28) // 2) + "key=x password=Hx7Lm2Qa"),
    "hex_dump_with_key_30KB": (
        30_000,
        lambda n: "key " + "-".join(f"{(i * 37) % 256:02x}" for i in range(n // 3)),
    ),
    "password_hits_behind_long_names_4MB": (
        4 * 1024 * 1024,
        lambda n: _repeat("a_" * 300 + " password=hunter2 ", n),
    ),
    "password_hits_packed_4MB": (4 * 1024 * 1024, lambda n: _repeat("password=hunter2 ", n)),
    "nested_quotes_1MB": (1_000_000, lambda n: "password=" + _repeat('"\'\\"', n)),
    "private_key_body_4MB": (
        4 * 1024 * 1024,
        lambda n: _repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx\n", n),
    ),
}


# --- measuring ----------------------------------------------------------------------------------------


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def old_in_child(name: str, size: int, timeout: float) -> float | None:
    """Seconds the old rules took on ``INPUTS[name]`` at ``size`` bytes, or ``None`` past ``timeout``."""
    command = [sys.executable, __file__, "--old-one", name, str(size)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return float(out.strip().splitlines()[-1])


def old_growth(name: str, full: int, timeout: float, fractions: Iterable[int]) -> list[dict[str, Any]]:
    points: list[dict[str, Any]] = []
    for divisor in fractions:
        size = full // divisor
        seconds = old_in_child(name, size, timeout)
        points.append({"bytes": size, "seconds": seconds, "timeout_s": timeout})
        print(
            f"    old rules, {size:>9,} bytes: "
            + (f"{seconds:.3f} s" if seconds is not None else "timed out")
        )
        if seconds is None:
            break
    return points


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    full, make = INPUTS[name]
    text = make(full)
    repeats = 3 if args.quick else 7
    samples = timed(lambda: redaction.redact(text), repeats)
    median = statistics.median(samples)
    row: dict[str, Any] = {
        "bytes": len(text.encode()),
        "repeats": repeats,
        "new_ms_median": median * 1000,
        "new_ms_max": max(samples) * 1000,
        "new_ms_per_mb": median * 1000 / (len(text.encode()) / 1e6),
    }
    out = redaction.redact(text)
    row["secret_left"] = any(s in out for s in ("hunter2", "Hx7Lm2Qa", "Zq8xPmT3vR", "Tr0ub4dor"))
    print(f"{name:>36}: new {row['new_ms_median']:.1f} ms ({row['new_ms_per_mb']:.1f} ms/MB)")
    fractions = (8, 4) if args.quick else (8, 4, 2, 1)
    row["old"] = old_growth(name, full, args.old_timeout, fractions)
    done = [p for p in row["old"] if p["seconds"] is not None]
    if len(done) >= 2 and done[-2]["seconds"] > 0:
        ratio = done[-1]["bytes"] / done[-2]["bytes"]
        row["old_growth_exponent"] = round(
            (math.log(done[-1]["seconds"] / done[-2]["seconds"]) / math.log(ratio))
            if done[-1]["seconds"] > 0
            else 0.0,
            2,
        )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--old-timeout", type=float, default=120.0, help="seconds per old-rules run")
    parser.add_argument("--old-one", nargs=2, metavar=("INPUT", "BYTES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.old_one:
        name, size = args.old_one[0], int(args.old_one[1])
        text = INPUTS[name][1](size)
        start = time.perf_counter()
        old_redact(text)
        print(time.perf_counter() - start)
        return 0
    redaction.redact("warm up password=x")
    report: dict[str, Any] = {
        "command": "python bench/bench_redaction.py" + (" --quick" if args.quick else ""),
        "python": platform.python_version(),
        "google_re2": metadata.version("google-re2"),
        "window_bytes": redaction.WINDOW,
        "overlap_bytes": redaction.OVERLAP,
        "max_hits": redaction.MAX_HITS,
        "rules": len(redaction.RULES),
        "load_average_at_start": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
        "inputs": {name: measure(name, args) for name in INPUTS},
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "redaction.json").write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
