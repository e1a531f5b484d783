"""The known-transient signals: the words on a failure's decisive line that say the cause will pass.

A pattern that says ``retryable: true`` only proposes a claim; the claim stands when the decisive line
carries one of these signals and the log does not show the signal again and again (the retryable rule
in ``docs/categories.md``). A generic timeout, an
unreachable host, a refused connection or an HTTP 500 is not among them: a retry may meet it again.

The list is data, one named RE2 expression per kind of signal (and for 429 and 502/503 the status
number, not after a label), matched without regard to case against one line: linear in the line's
length. Plain Python, no Airflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from qubinode_recovery_provider.diagnosis.linear import LinearPattern, compile_linear

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
    ("rate limited (HTTP 429)", r"toomanyrequests|too many requests|\brate[ -]?limit|\brate exceeded"),
    (
        "gateway or service unavailable (HTTP 502/503)",
        r"bad gateway|service (?:temporarily )?unavailable|service is (?:currently|temporarily) unavailable",
    ),
    # (a word, not a path's ``/lock`` directory or file; dpkg's ``lock-frontend`` file says it too)
    ("lock held", r"(?:^|[^\w/])lock(?:$|[^\w/])|\blocked\b|\block-frontend\b"),
    ("resolver failure (SERVFAIL)", r"\bSERVFAIL\b|server misbehaving|\bEAI_AGAIN\b"),
    ("service starting up", r"starting up|in recovery mode"),
    ("object being deleted", r"being (?:deleted|terminated)"),
)


#: The HTTP statuses (:data:`_STATUS`) that carry a signal besides its words.
HTTP_STATUSES: dict[str, str] = {
    "rate limited (HTTP 429)": "429",
    "gateway or service unavailable (HTTP 502/503)": "50[23]",
}
#: The most labelled numbers looked at on one line for the statuses between them.
MAX_LABELLED = 10_000
#: A number that a label makes something else than an HTTP status: ``port 429``, ``uid=503``,
#: ``line 502``, ``pid: 503`` (``status 503``, ``code 503``, ``error 503`` stay statuses). It vetoes
#: itself only, however many there are: not the signal's words, nor a status elsewhere on the line.
_LABELLED = (
    r"\b(?:port|uid|gid|pid|tid|line|lines|row|column|col|offset|bytes?|id|user|group|step|attempt|try"
    r"|version|build|job|task|issue|item|record|page|size|count|errno|exit code|exit status|rc)"
    r"\s*[=:#]?\s*{}\b"
)
#: Matches that veto a signal's match they overlap (what look-around would say): a locked user
#: account waits for an administrator, not for a process to finish.
NOT_TRANSIENT: dict[str, tuple[str, ...]] = {
    "lock held": (r"\baccounts?\b.*\block", r"\blocked out\b", r"\blockout\b"),
}


@dataclass(frozen=True)
class _Signal:
    """One signal: its words (vetoes as ``exclude``), or its status number where no label owns it."""

    name: str
    words: LinearPattern
    status: Any = None  # the compiled status number, when the signal has one
    labelled: Any = None  # the compiled labelled number that is not that status

    def search(self, data: bytes) -> bool:
        if self.words.search(data) is not None:
            return True
        if self.status is None or self.status.search(data) is None:
            return False
        unlabelled = _blanked(data, self.labelled)
        return unlabelled is not None and self.status.search(unlabelled) is not None


def _blanked(data: bytes, labelled: Any) -> bytes | None:
    """``data`` with each labelled number overwritten by ``x`` (one linear pass): a label begins and
    its number ends with a word character, so the characters around keep their class and a status next
    to it is still one. None for a line of more than :data:`MAX_LABELLED` labelled numbers (no status
    is claimed on it: the cost stays a few milliseconds however long the line)."""
    out: bytearray | None = None
    for number, match in enumerate(labelled.finditer(data)):
        if number == MAX_LABELLED:
            return None
        out = out if out is not None else bytearray(data)
        start, end = match.span()
        out[start:end] = b"x" * (end - start)
    return data if out is None else bytes(out)


@cache
def _signals() -> list[_Signal]:
    signals = []
    for name, regex in TRANSIENT_SIGNALS:
        words = LinearPattern.compile(regex, NOT_TRANSIENT.get(name, ()), ignore_case=True)
        code = HTTP_STATUSES.get(name)
        if code is None:
            signals.append(_Signal(name, words))
            continue
        status = compile_linear(_STATUS.format(code), ignore_case=True)
        signals.append(_Signal(name, words, status, compile_linear(_LABELLED.format(code), ignore_case=True)))
    return signals


def transient_signal(line: str) -> str | None:
    """The name of the first known-transient signal ``line`` carries, else None.

    :param line: the decisive line of a diagnosis.
    """
    data = line.encode("utf-8", "replace")
    for signal in _signals():
        if signal.search(data):
            return signal.name
    return None


def transient_claim(line: str, lines_matched: int = 1) -> bool:
    """Whether a ``retryable: true`` claim has its evidence: ``line`` carries a known-transient signal
    and the log does not show it recurring (matched on :data:`RECURRING_LINES` lines or more: the
    tool's own retries met it again, so it is not passing on that time scale).

    :param line: the decisive line.
    :param lines_matched: how many lines of the log the decisive pattern matched.
    """
    return lines_matched < RECURRING_LINES and transient_signal(line) is not None
