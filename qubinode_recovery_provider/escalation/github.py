"""GitHub issues as the escalation sink, through PyGithub. Plain Python, no Airflow import.

:class:`GitHubIssues` is the boundary: it finds a fingerprint's issue (by number, else by the hidden marker
in its body through the search API), creates, comments, reopens and closes it. It takes a PyGithub
``Github`` client built by an adapter: :func:`github_client` (token, base URL, timeout, no retries: the
outbox retries) for the CLI and plain Python, or ``hooks/github.py`` from an Airflow ``github``
connection. Every text it sends passes through :func:`~qubinode_recovery_provider.redaction.redact` and
is cut to GitHub's limits (:func:`bounded`).

A failed call becomes a :class:`DeliveryFailure` (:func:`classify`) with the wait GitHub asked for
(``Retry-After``, or ``x-ratelimit-reset`` when the rate limit is used up); the outbox drain
(:mod:`~qubinode_recovery_provider.escalation.delivery`) keeps the entry and tries again after it.
PyGithub is imported only when a client is built or a failure classified.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.redaction import redact

if TYPE_CHECKING:
    from github import Github

#: GitHub refuses issue and comment bodies longer than this (characters).
BODY_LIMIT = 65536
TITLE_LIMIT = 256
#: Search results looked at for the marker.
SEARCH_LIMIT = 5
MARKER_PREFIX = "qubinode-recovery:fingerprint="
DEFAULT_API_URL = "https://api.github.com"
DEFAULT_TIMEOUT_SECONDS = 15.0
#: The longest wait taken from GitHub's headers (its rate limits reset within the hour).
MAX_WAIT_SECONDS = 24 * 3600.0
#: A fingerprint the sink accepts: it goes into the marker and the search query unquoted.
_FINGERPRINT = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_.-]{0,127}")
#: ``owner/name`` as GitHub allows them; it goes into API paths and the search query.
_REPOSITORY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")
#: A word joiner: breaks a quoted marker (or an HTML comment) in report text without showing.
_JOINER = "\u2060"
TRUNCATED_NOTE = "\n\n_… truncated: the full report is in the ledger (`qubinode-recovery incidents show`)._\n"


class DeliveryFailure(Exception):
    """A GitHub call that did not go through.

    :param reason: one line: status and GitHub's message, or the connection error
    :param retry_after: seconds GitHub asked to wait (``Retry-After``), or None
    :param transient: the call may work later unchanged (5xx, rate limits, the network); False for
        credentials, permissions, a missing repository or rejected input (still retried, with the longest
        backoff, so that fixing the connection delivers the queue)
    :param reset_at: when the used-up rate limit resets (``x-ratelimit-reset``), or None
    """

    def __init__(
        self,
        reason: str,
        retry_after: float | None = None,
        transient: bool = True,
        reset_at: datetime | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.transient = transient
        self.reset_at = reset_at

    def wait_seconds(self, now: datetime) -> float:
        """Seconds GitHub asked to wait from ``now`` (0 when it did not say)."""
        if self.retry_after is not None:
            return min(MAX_WAIT_SECONDS, self.retry_after)
        if self.reset_at is not None:
            return min(MAX_WAIT_SECONDS, max(0.0, (self.reset_at - now).total_seconds()))
        return 0.0


@dataclass(frozen=True)
class IssueRef:
    """A GitHub issue as the drain needs it.

    :param number: the issue number
    :param url: its HTML URL
    :param state: ``open`` or ``closed``
    :param handle: the PyGithub ``Issue``
    """

    number: int
    url: str
    state: str
    handle: Any = None


def marker(fingerprint: str) -> str:
    """The hidden line that ties an issue to ``fingerprint``."""
    return f"<!-- {MARKER_PREFIX}{fingerprint} -->"


def bounded(text: str, limit: int = BODY_LIMIT, note: str = TRUNCATED_NOTE) -> str:
    """``text`` redacted, defused and cut to ``limit`` characters, ending with ``note`` when cut.

    Defused: a marker quoted by the text (a log can contain one) no longer reads as one, so neither the
    search nor :meth:`GitHubIssues.find` takes this issue for another fingerprint's; an HTML comment it
    opens no longer hides the rest of the issue.
    """
    clean = defused(redact(text))
    if len(clean) <= limit:
        return clean
    return clean[: limit - len(note)] + note


def defused(text: str) -> str:
    """``text`` with every marker prefix and HTML comment opener broken by an invisible word joiner."""
    broken = text.replace(MARKER_PREFIX, MARKER_PREFIX[:-1] + _JOINER + "=")
    return broken.replace("<!--", "<" + _JOINER + "!--")


def carries_marker(body: str | None, fingerprint: str) -> bool:
    """Whether an issue body is ``fingerprint``'s: its first line is the marker (text further down is
    the report, which may quote anything)."""
    return (body or "").split("\n", 1)[0].strip() == marker(fingerprint)


def checked_fingerprint(fingerprint: str) -> str:
    """``fingerprint`` when it can go into the marker and the search query as it is.

    :raises DeliveryFailure: (not transient) for anything else
    """
    if not _FINGERPRINT.fullmatch(fingerprint or ""):
        shown = one_line(repr(fingerprint))[:80]
        reason = f"fingerprint {shown} is not letters, digits, ':', '.', '_', '-'"
        raise DeliveryFailure(reason, transient=False)
    return fingerprint


def repository_name(text: str) -> str:
    """``text`` stripped when it is a repository's ``owner/name``.

    :raises ValueError: (one line) for anything else: spaces, more slashes, ``..``, a leading ``-``
    """
    name = (text or "").strip()
    if not _REPOSITORY.fullmatch(name) or name.split("/")[1] in (".", ".."):
        raise ValueError(f"GitHub repository must be owner/name, got {one_line(repr(text))[:120]}")
    return name


def issue_body(fingerprint: str, body: str) -> str:
    """The issue body: the marker first (it survives truncation), then the report, bounded."""
    head = marker(fingerprint) + "\n"
    return head + bounded(body, BODY_LIMIT - len(head))


def github_client(
    token: str,
    *,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    seconds_between_requests: float | None = 0.25,
    seconds_between_writes: float | None = 1.0,
) -> Github:
    """A PyGithub client for the outbox: token auth, ``base_url`` (GitHub Enterprise, a test server),
    a timeout on every call and no retries of its own.

    :param token: a personal access, fine-grained or Actions token
    :param base_url: the REST API root; default ``https://api.github.com``
    :param timeout: seconds per HTTP call
    :param seconds_between_requests: PyGithub's spacing of requests (its default)
    :param seconds_between_writes: PyGithub's spacing of writes (GitHub asks for one second)
    """
    from github import Auth, Github

    return Github(
        auth=Auth.Token(token),
        base_url=(base_url or DEFAULT_API_URL).rstrip("/"),
        timeout=int(max(1, timeout)),
        retry=None,
        seconds_between_requests=seconds_between_requests,
        seconds_between_writes=seconds_between_writes,
    )


def without_retries(client: Github, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> Github:
    """The same client (auth, base URL) with the outbox's settings: a timeout and no retries, so a rate
    limit is waited out by the outbox rather than inside a worker."""
    from github import Github

    settings = {**client.requester.kwargs, "retry": None, "timeout": int(max(1, timeout))}
    return Github(**settings)


class GitHubIssues:
    """The escalation issues of one repository.

    :param client: a PyGithub ``Github`` client (see :func:`github_client`)
    :param repository: ``owner/name``
    """

    def __init__(self, client: Github, repository: str) -> None:
        self.client = client
        self.repository = repository_name(repository)
        self._repo: Any = None

    def __repr__(self) -> str:
        return f"GitHubIssues({self.repository!r})"

    def _repository(self) -> Any:
        if self._repo is None:
            self._repo = self._call(self.client.get_repo, self.repository)
        return self._repo

    def find(self, fingerprint: str, number: int | None = None) -> IssueRef | None:
        """The issue of ``fingerprint``: issue ``number`` when given and it carries the marker, else the
        first issue the search API finds with the marker; None when there is none."""
        checked_fingerprint(fingerprint)
        if number:
            issue = self._call(self._get_issue, number)
            if issue is not None and carries_marker(issue.body, fingerprint):
                return self._ref(issue)
        query = f'"{MARKER_PREFIX}{fingerprint}" repo:{self.repository} is:issue in:body'
        for found in self._call(lambda: list(islice(self.client.search_issues(query), SEARCH_LIMIT))):
            if not carries_marker(found.body, fingerprint):
                continue
            issue = self._call(self._get_issue, found.number)  # this repository's issue, read afresh
            if issue is not None and carries_marker(issue.body, fingerprint):
                return self._ref(issue)
        return None

    def create(self, fingerprint: str, title: str, body: str, labels: list[str]) -> IssueRef:
        """Open the issue of ``fingerprint`` (GitHub creates missing labels)."""
        checked_fingerprint(fingerprint)
        issue = self._call(
            self._repository().create_issue,
            title=bounded(" ".join(title.split()), TITLE_LIMIT, "…"),
            body=issue_body(fingerprint, body),
            labels=[bounded(label, 50, "") for label in labels if label],
        )
        return self._ref(issue)

    def comment(self, ref: IssueRef, text: str) -> None:
        """Add a comment to the issue."""
        self._call(ref.handle.create_comment, bounded(text))

    def reopen(self, ref: IssueRef, text: str) -> IssueRef:
        """Reopen a closed issue with a comment saying why."""
        self._call(ref.handle.edit, state="open")
        self.comment(ref, text)
        return IssueRef(ref.number, ref.url, "open", ref.handle)

    def close(self, ref: IssueRef, text: str) -> IssueRef:
        """Close the issue as completed, with a comment saying why."""
        self.comment(ref, text)
        self._call(ref.handle.edit, state="closed", state_reason="completed")
        return IssueRef(ref.number, ref.url, "closed", ref.handle)

    def _ref(self, issue: Any) -> IssueRef:
        """The issue as an :class:`IssueRef`; an answer without its fields is a failed call."""
        ref: IssueRef = self._call(_ref, issue)
        return ref

    def _get_issue(self, number: int) -> Any:
        """The issue ``number``; None when it is not there (404), or was deleted (410 Gone), so that the
        fingerprint gets a new issue rather than a failure on every try."""
        from github import GithubException, UnknownObjectException

        try:
            return self._repository().get_issue(number)
        except UnknownObjectException:
            return None
        except GithubException as exc:
            if exc.status == 410:
                return None
            raise

    @staticmethod
    def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except DeliveryFailure:
            raise
        except Exception as exc:
            raise classify(exc) from None


def _ref(issue: Any) -> IssueRef:
    return IssueRef(int(issue.number), str(issue.html_url), str(issue.state), issue)


def classify(exc: BaseException) -> DeliveryFailure:
    """What a failed PyGithub call means for the outbox (see :class:`DeliveryFailure`)."""
    from github import GithubException

    if not isinstance(exc, GithubException):
        return DeliveryFailure(f"{type(exc).__name__}: {one_line(exc)}")
    headers = {str(k).lower(): str(v).strip() for k, v in (exc.headers or {}).items()}
    message = _message(exc)
    wait = _seconds(headers.get("retry-after", ""))
    reset = _seconds(headers.get("x-ratelimit-reset", ""), 2.0**33)
    used_up = headers.get("x-ratelimit-remaining") == "0" and reset is not None
    reset_at = datetime.fromtimestamp(reset, UTC) if used_up and reset is not None else None
    lowered = message.lower()
    limited = exc.status == 429 or (
        exc.status == 403 and (wait is not None or used_up or "rate limit" in lowered or "abuse" in lowered)
    )
    transient = limited or exc.status >= 500 or exc.status in (408, 409)
    return DeliveryFailure(f"GitHub answered {exc.status}: {message}", wait, transient, reset_at)


def _seconds(text: str, limit: float = MAX_WAIT_SECONDS) -> float | None:
    """A header's whole number of seconds, at most ``limit``; None when it is not one."""
    return min(float(text), limit) if text.isascii() and text.isdigit() else None


def issues_from_env(environ: Mapping[str, str] | None = None, **client_options: Any) -> GitHubIssues:
    """The sink for a shell or a CI job: ``GITHUB_TOKEN``, ``GITHUB_REPOSITORY`` (``owner/name``) and
    optional ``GITHUB_API_URL`` (GitHub Actions sets the last two).

    :raises ValueError: when the token or the repository is missing (one line)
    """
    env = os.environ if environ is None else environ
    token = env.get("GITHUB_TOKEN", "").strip()
    repository = env.get("GITHUB_REPOSITORY", "").strip()
    if not token:
        raise ValueError("GITHUB_TOKEN is not set: the GitHub issue cannot be filed")
    if not repository:
        raise ValueError("GITHUB_REPOSITORY is not set (owner/name of the repository for issues)")
    client = github_client(token, base_url=env.get("GITHUB_API_URL") or None, **client_options)
    return GitHubIssues(client, repository)


def _message(exc: Any) -> str:
    data = exc.data
    text = data.get("message") if isinstance(data, dict) else data
    return one_line(str(text or exc.message or ""))


def one_line(exc: object) -> str:
    """``exc`` (or any text) as one redacted line of at most 300 characters (it goes to the ledger, the
    delivery report and stderr)."""
    return " ".join(redact(str(exc)).split())[:300] or type(exc).__name__


__all__ = [
    "BODY_LIMIT",
    "DeliveryFailure",
    "GitHubIssues",
    "IssueRef",
    "bounded",
    "carries_marker",
    "checked_fingerprint",
    "classify",
    "defused",
    "github_client",
    "issue_body",
    "issues_from_env",
    "marker",
    "one_line",
    "repository_name",
    "without_retries",
]
