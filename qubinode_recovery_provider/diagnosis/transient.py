"""The known-transient signals: the words on a failure's decisive line that say the cause will pass.

A pattern that says ``retryable: true`` only proposes a claim; the claim stands when the decisive line
carries one of these signals and the log does not show the signal again and again (the retryable rule
in ``docs/categories.md``). A generic timeout, an
unreachable host, a refused connection or an HTTP 500 is not among them: a retry may meet it again.

The list is data, one named RE2 expression per kind of signal, matched without regard to case against
one line: linear in the line's length. Plain Python, no Airflow.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from qubinode_recovery_provider.diagnosis.linear import compile_linear

#: A signal the log shows on this many lines or more: the tool's own retries met it again.
RECURRING_LINES = 3
#: An HTTP status as a number of its own: not a part of an address, a port, a version or
#: an issue number (``10.0.5.503``, ``host:503``, ``1.503``, ``#503``; ``status=503`` is one).
_STATUS = r"(?:^|[^\w.:/#]){}(?:$|[^\w.:/]|[.:](?:\W|$))"
#: (name, expression) of each kind of transient signal, in the order they are tried.
TRANSIENT_SIGNALS: tuple[tuple[str, str], ...] = (
    ("connection reset", r"connection reset|\bECONNRESET\b|Cannot recv data"),
    (
        "connection dropped mid-transfer",
        r"broken ?pipe|\bearly EOF\b|\bunexpected EOF\b|hung up unexpectedly|\bRPC failed\b"
        r"|unexpected disconnect while reading|GnuTLS recv error|gnutls_handshake\(\) failed"
        r"|happened during read|End of file while reading data|could not be sent to (?:the )?remote host"
        r"|Empty reply from server|closed connection without response|SSL_ERROR_SYSCALL"
        r"|use of closed network connection",
    ),
    ("registry or mirror cut off", r"/v2/\S*\s?EOF\b|\bblobs?\b.*\bEOF\b"),
    (
        "rate limited (HTTP 429)",
        r"toomanyrequests|too many requests|" + _STATUS.format("429") + r"|\brate[ -]?limit|\brate exceeded",
    ),
    (
        "gateway or service unavailable (HTTP 502/503)",
        _STATUS.format("50[23]") + r"|bad gateway|service (?:temporarily )?unavailable"
        r"|service is (?:currently|temporarily) unavailable",
    ),
    # (a word, not a path's ``/lock`` directory or file; dpkg's ``lock-frontend`` file says it too)
    ("lock held", r"(?:^|[^\w/])lock(?:$|[^\w/])|\blocked\b|\block-frontend\b"),
    ("resolver failure (SERVFAIL)", r"\bSERVFAIL\b|server misbehaving|\bEAI_AGAIN\b"),
    ("service starting up", r"starting up|in recovery mode"),
    ("object being deleted", r"being (?:deleted|terminated)"),
)


#: Lines a signal's expression matches that still do not carry it: a locked user account waits for an
#: administrator, not for a process to finish.
NOT_TRANSIENT: dict[str, str] = {"lock held": r"\baccounts?\b.*\block|\blocked out\b|\blockout\b"}


@cache
def _signals() -> list[tuple[str, Any, Any]]:
    return [
        (
            name,
            compile_linear(regex, ignore_case=True),
            compile_linear(NOT_TRANSIENT[name], ignore_case=True) if name in NOT_TRANSIENT else None,
        )
        for name, regex in TRANSIENT_SIGNALS
    ]


def transient_signal(line: str) -> str | None:
    """The name of the first known-transient signal ``line`` carries, else None.

    :param line: the decisive line of a diagnosis.
    """
    for name, expression, unless in _signals():
        if expression.search(line) and (unless is None or not unless.search(line)):
            return name
    return None


def transient_claim(line: str, lines_matched: int = 1) -> bool:
    """Whether a ``retryable: true`` claim has its evidence: ``line`` carries a known-transient signal
    and the log does not show it recurring (matched on :data:`RECURRING_LINES` lines or more: the
    tool's own retries met it again, so it is not passing on that time scale).

    :param line: the decisive line.
    :param lines_matched: how many lines of the log the decisive pattern matched.
    """
    return lines_matched < RECURRING_LINES and transient_signal(line) is not None
