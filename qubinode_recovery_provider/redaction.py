"""Remove secrets from text before it leaves the process (ledger, REST calls, issue bodies, UI).

One ordered table of named rules, each a regular expression and a replacement that keeps the words
around the secret, so a redacted line still reads (and still diagnoses) the same way::

    >>> redact("curl -H 'Authorization: Bearer eyJhbGciOi.eyJzdWIi.c2lnbmF0' https://x")
    "curl -H 'Authorization: Bearer ***' https://x"

Plain Python, no Airflow. The Airflow adapters add Airflow's own secrets masker on top (it knows the
values of the connections and variables the task used).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

MASK = "***"

_SENSITIVE_NAMES = (
    r"pass(?:word|wd|phrase)?|pwd|secret(?:[_-]?key)?|client[_-]?secret|api[_-]?key|apikey|"
    r"access[_-]?key(?:[_-]?id)?|secret[_-]?access[_-]?key|private[_-]?key|auth[_-]?token|"
    r"access[_-]?token|refresh[_-]?token|id[_-]?token|session[_-]?token|token|credentials?|"
    r"vault[_-]?token|become[_-]?pass|ansible[_-]?(?:become|ssh)?[_-]?pass(?:word)?"
)


@dataclass(frozen=True)
class Rule:
    """One kind of secret: where it sits and what replaces it.

    :param name: what the rule finds, for tests and documentation.
    :param pattern: the compiled expression.
    :param replacement: ``re.sub`` replacement; groups keep the text around the secret.
    """

    name: str
    pattern: re.Pattern[str]
    replacement: str


def _rule(name: str, pattern: str, replacement: str, flags: int = 0) -> Rule:
    return Rule(name, re.compile(pattern, flags), replacement)


#: Applied in order; earlier, more specific rules leave ``***`` that later rules do not touch.
RULES: tuple[Rule, ...] = (
    _rule(
        "private_key_block",
        r"-----BEGIN ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)-----.*?(?:-----END \1-----|\Z)",
        r"-----BEGIN \1-----" + MASK + r"-----END \1-----",
        re.DOTALL,
    ),
    _rule("url_credentials", r"\b([a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@'\"]*:)[^\s@/'\"]+@", r"\1" + MASK + "@"),
    _rule(
        "authorization_header",
        r"\b((?:proxy-)?authorization\b['\"]?\s*[:=]\s*['\"]?(?:(?:bearer|basic|token|digest|negotiate)\s+)?)"
        r"[^\s'\",;]+",
        r"\1" + MASK,
        re.IGNORECASE,
    ),
    _rule(
        "token_header",
        r"\b((?:x-vault-token|x-api-key|x-auth-token|private-token|x-github-token)['\"]?\s*[:=]\s*['\"]?)"
        r"[^\s'\",;]+",
        r"\1" + MASK,
        re.IGNORECASE,
    ),
    _rule("bearer_token", r"\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}", r"\1" + MASK, re.IGNORECASE),
    _rule("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}", MASK),
    _rule("github_token", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{40,255})\b", MASK),
    _rule("vault_token", r"\bhv[sbr]\.[A-Za-z0-9_-]{20,}", MASK),
    _rule("aws_access_key_id", r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b", MASK),
    _rule("slack_token", r"\bxox[abposr]-[A-Za-z0-9-]{10,}", MASK),
    _rule(
        "secret_flag",
        r"(--(?:" + _SENSITIVE_NAMES + r")(?:=|\s+))(?!\*\*\*)(['\"]?)[^\s'\"]+\2",
        r"\1\2" + MASK + r"\2",
        re.IGNORECASE,
    ),
    _rule("sshpass", r"\b(sshpass\s+-p\s*)(['\"]?)[^\s'\"]+\2", r"\1\2" + MASK + r"\2"),
    _rule(
        "secret_assignment",
        r"((?<![A-Za-z0-9])['\"]?(?:[A-Za-z0-9]+[_-])*(?:" + _SENSITIVE_NAMES + r")['\"]?\s*(?:=|:(?!//))\s*)"
        r"(?!\*\*\*)(?:\"[^\"]*\"|'[^']*'|[^\s,;}\])]+)",
        r"\1" + MASK,
        re.IGNORECASE,
    ),
)

#: Cheap substring tests: a text with none of these holds nothing the rules would mask.
_LOWER_TRIGGERS = (
    "private key",
    "@",
    "author",
    "token",
    "bearer",
    "eyj",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "hvs.",
    "hvb.",
    "hvr.",
    "xox",
    "pass",
    "pwd",
    "secret",
    "key",
    "credential",
)
_AWS_PREFIXES = ("AKIA", "ASIA", "AGPA", "AIDA", "AROA", "ANPA", "ANVA", "AIPA")


def _might_hold_secret(text: str) -> bool:
    lower = text.lower()
    return any(t in lower for t in _LOWER_TRIGGERS) or any(p in text for p in _AWS_PREFIXES)


def redact(text: str) -> str:
    """Return ``text`` with every secret the :data:`RULES` recognise replaced by ``***``.

    :param text: any text: a log tail, an exception message, a command line.
    """
    if not text or not _might_hold_secret(text):
        return text
    for rule in RULES:
        text = rule.pattern.sub(rule.replacement, text)
    return text


def redact_lines(lines: Iterable[str]) -> list[str]:
    """Redact lines; when a private key block is among them, as one text so the block is caught whole.

    :param lines: the lines (without newlines).
    :return: the redacted lines; a key block collapses into one line.
    """
    items = list(lines)
    if any("PRIVATE KEY" in line for line in items):
        return redact("\n".join(items)).split("\n")
    return [redact(line) for line in items]


#: ANSI/VT escape sequences (CSI, OSC, two-byte escapes) and the other C0/C1 control characters but
#: tab and newline: what a terminal would act on instead of printing.
_CONTROL = re.compile(
    r"\x1b\[[0-?]{0,64}[ -/]{0,16}[@-~]|\x1b\][^\x07\x1b]{0,4096}(?:\x07|\x1b\\)?|\x1b[@-_]?|"
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def strip_control(text: str) -> str:
    """Remove terminal control sequences and control characters (keeps tab and newline).

    :param text: text about to be printed or stored.
    """
    return _CONTROL.sub("", text) if text else text


def redact_data(value: object, max_depth: int = 32) -> object:
    """Redact every string inside JSON-like data (dicts, lists, tuples); keys are kept as they are.

    :param value: the data.
    :param max_depth: nesting deeper than this is replaced by ``"***"`` (never recursed into).
    """
    if isinstance(value, str):
        return redact(value)
    if max_depth <= 0:
        return MASK if isinstance(value, dict | list | tuple) else value
    if isinstance(value, dict):
        return {k: redact_data(v, max_depth - 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_data(v, max_depth - 1) for v in value]
    return value


__all__ = ["MASK", "RULES", "Rule", "redact", "redact_data", "redact_lines", "strip_control"]
