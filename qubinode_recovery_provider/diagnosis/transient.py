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

from qubinode_recovery_provider.diagnosis.linear import LinearPattern

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


#: A number that a label makes something else than an HTTP status: ``port 429``, ``uid=503``,
#: ``line 502``, ``pid: 503`` (``status 503``, ``code 503``, ``error 503`` stay statuses).
_LABELLED = (
    r"\b(?:port|uid|gid|pid|tid|line|lines|row|column|col|offset|bytes?|id|user|group|step|attempt|try"
    r"|version|build|job|task|issue|item|record|page|size|count|errno|exit code|exit status|rc)"
    r"\s*[=:#]?\s*{}\b"
)
#: Matches that veto a signal's match they overlap (what look-around would say): a locked user
#: account waits for an administrator, not for a process to finish; a labelled number is no status.
NOT_TRANSIENT: dict[str, tuple[str, ...]] = {
    "rate limited (HTTP 429)": (_LABELLED.format("429"),),
    "gateway or service unavailable (HTTP 502/503)": (_LABELLED.format("50[23]"),),
    "lock held": (r"\baccounts?\b.*\block", r"\blocked out\b", r"\blockout\b"),
}


@cache
def _signals() -> list[tuple[str, LinearPattern]]:
    return [
        (name, LinearPattern.compile(regex, NOT_TRANSIENT.get(name, ()), ignore_case=True))
        for name, regex in TRANSIENT_SIGNALS
    ]


def transient_signal(line: str) -> str | None:
    """The name of the first known-transient signal ``line`` carries, else None.

    :param line: the decisive line of a diagnosis.
    """
    data = line.encode("utf-8", "replace")
    for name, pattern in _signals():
        if pattern.search(data) is not None:
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
