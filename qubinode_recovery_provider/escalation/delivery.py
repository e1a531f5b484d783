"""Deliver the escalation outbox to GitHub issues: one issue per fingerprint, once. Plain Python.

:func:`deliver_escalations` drains the due entries of the ledger's outbox (pending, retry time come),
one fingerprint at a time under a lease in the ledger (:meth:`Ledger.claim_escalation`), so any number of
concurrent drains never act on one fingerprint together. For each ``escalate`` entry:

- no issue yet (neither in the ledger nor found by its marker): the issue is created;
- the issue is closed: it is reopened with a "regressed" comment;
- it is open and was last commented within ``comment_interval``: nothing is sent, the occurrence is
  counted; otherwise a comment reports the occurrences since the last one with the new context.

A ``resolve`` entry (the recovery fixed the failure) closes the open issue with a note. When the interval
has passed, the drain also comments on issues with occurrences counted but not reported yet.

A drain that finds a fingerprint's lease taken leaves its entries to the drain holding it: that one
looks at the fingerprint's queue again each time it lets go of the lease, and takes the lease back while
an entry is due, so a burst of failures from many workers leaves nothing waiting for the next
scheduled drain (at most ``limit`` entries per drain).

Every entry is marked sent with the issue URL as its reference. A failed GitHub call leaves the entry
pending with ``next_attempt_at`` set to the later of the wait GitHub asked for and an exponential
backoff, and ends the drain (a rate limit holds for the whole API).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from qubinode_recovery_provider import config
from qubinode_recovery_provider.escalation.github import DeliveryFailure, IssueRef, one_line
from qubinode_recovery_provider.models import utcnow

if TYPE_CHECKING:
    from qubinode_recovery_provider.store.escalations import IssueRecord
    from qubinode_recovery_provider.store.queries import EscalationEntry

log = logging.getLogger(__name__)

ESCALATE = "escalate"
RESOLVE = "resolve"
CONTEXT_CHARS = 500
#: The longest ``github_comment_interval_minutes`` taken (a year); longer values are clipped to it.
MAX_INTERVAL_MINUTES = 366 * 24 * 60
#: A time after every retry time: with it, ``due_escalations`` lists every pending entry.
EVERY_PENDING = datetime(9999, 1, 1, tzinfo=UTC)


class IssueSink(Protocol):
    """Where escalations go (:class:`~qubinode_recovery_provider.escalation.github.GitHubIssues`)."""

    def find(self, fingerprint: str, number: int | None = None) -> IssueRef | None: ...

    def create(self, fingerprint: str, title: str, body: str, labels: list[str]) -> IssueRef: ...

    def comment(self, ref: IssueRef, text: str) -> None: ...

    def reopen(self, ref: IssueRef, text: str) -> IssueRef: ...

    def close(self, ref: IssueRef, text: str) -> IssueRef: ...


@dataclass(frozen=True)
class DeliverySettings:
    """How the drain paces itself.

    :param comment_interval: at most one comment per issue in this time
    :param lease_seconds: how long a drain holds a fingerprint (a crashed drain's lease expires)
    :param base_backoff_seconds: wait after the first failure, doubled per failure
    :param max_backoff_seconds: longest wait; also the wait after a failure a retry cannot fix
    :param limit: entries one drain delivers at most (the rest wait for the next drain)
    """

    comment_interval: timedelta = timedelta(minutes=60)
    lease_seconds: float = 300.0
    base_backoff_seconds: float = 60.0
    max_backoff_seconds: float = 3600.0
    limit: int = 200

    @classmethod
    def from_config(cls) -> DeliverySettings:
        """The settings with ``[qubinode_recovery] github_comment_interval_minutes`` (0 .. a year).

        :raises config.ConfigError: when it is not an integer
        """
        minutes = min(max(0, config.get_int("github_comment_interval_minutes")), MAX_INTERVAL_MINUTES)
        return cls(comment_interval=timedelta(minutes=minutes))

    def backoff(self, tries: int, failure: DeliveryFailure, now: datetime) -> float:
        """Seconds until the next try after the ``tries``-th failure: the exponential backoff, or the
        wait GitHub asked for when longer; the longest backoff for a failure a retry cannot fix."""
        asked = failure.wait_seconds(now)
        if not failure.transient:
            return max(self.max_backoff_seconds, asked)
        exponential = min(
            self.max_backoff_seconds, self.base_backoff_seconds * float(2 ** min(max(0, tries - 1), 32))
        )
        return max(exponential, asked)


@dataclass
class DeliveryReport:
    """What one drain did (JSON-ready with :meth:`to_dict`)."""

    delivered: int = 0
    created: int = 0
    commented: int = 0
    counted: int = 0
    reopened: int = 0
    closed: int = 0
    deferred: int = 0
    busy: int = 0
    errors: list[str] = field(default_factory=list)
    references: dict[int, str] = field(default_factory=dict)
    retry_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "created": self.created,
            "commented": self.commented,
            "counted": self.counted,
            "reopened": self.reopened,
            "closed": self.closed,
            "deferred": self.deferred,
            "busy": self.busy,
            "errors": list(self.errors),
            "references": {str(k): v for k, v in self.references.items()},
            "retry_at": self.retry_at,
        }


def default_owner() -> str:
    """A name for this drain in the ledger's lease: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def deliver_escalations(
    ledger: Any,
    sink: IssueSink,
    *,
    settings: DeliverySettings | None = None,
    clock: Callable[[], datetime] = utcnow,
    fingerprint: str | None = None,
    owner: str | None = None,
) -> DeliveryReport:
    """Drain the outbox's due entries (only ``fingerprint``'s when given) into ``sink``; see the module
    docstring. Ledger and GitHub failures are reported, never raised.

    :param ledger: the ledger
    :param sink: the issues (:class:`~qubinode_recovery_provider.escalation.github.GitHubIssues`)
    :param settings: pacing; default :meth:`DeliverySettings.from_config`
    :param clock: the time that paces comments and retries (tests pass their own; the lease runs on
        real time)
    :param fingerprint: deliver only this fingerprint's entries
    :param owner: this drain's name in the lease; default :func:`default_owner`
    """
    try:
        pacing = settings or DeliverySettings.from_config()
    except config.ConfigError as exc:  # nothing is sent; the entries stay pending
        return DeliveryReport(errors=[f"configuration: {one_line(exc)}"])
    drain = _Drain(ledger, sink, pacing, clock, owner or default_owner())
    try:
        drain.run(fingerprint)
    except Exception as exc:  # the ledger could not answer: nothing is lost, the entries stay pending
        drain.report.errors.append(f"ledger: {one_line(exc)}")
    return drain.report


class _Drain:
    def __init__(
        self,
        ledger: Any,
        sink: IssueSink,
        settings: DeliverySettings,
        clock: Callable[[], datetime],
        owner: str,
    ) -> None:
        self.ledger = ledger
        self.sink = sink
        self.settings = settings
        self.clock = clock
        self.owner = owner
        self.report = DeliveryReport()
        self.stopped = False
        self.handled: set[int] = set()  # entries this drain delivered or deferred, even if not recorded yet
        self.head_waiting = False  # the last pass stopped at an entry whose retry time had not come

    def run(self, fingerprint: str | None) -> None:
        order: dict[str, None] = {}
        for entry in self.ledger.due_escalations(self.clock(), self.settings.limit, fingerprint):
            order.setdefault(entry["fingerprint"], None)
        for fp in order:
            # Entries queued by drains that found the lease taken are this drain's to deliver; the look
            # after the release covers those queued between its last read and the release.
            while not self.stopped and self._locked(fp, self._deliver_fingerprint) and self._ready(fp):
                pass
        if fingerprint is None:
            cutoff = self.clock() - self.settings.comment_interval
            for fp in self.ledger.escalation_summaries_due(cutoff, self.settings.limit):
                if self.stopped:
                    return
                self._locked(fp, self._report_counted)

    def _locked(self, fingerprint: str, work: Callable[[str], None]) -> bool:
        """Do ``work`` under the fingerprint's lease; False when another drain holds it."""
        try:
            # the lease is about this process being alive: real time, whatever clock paces the comments
            claimed = self.ledger.claim_escalation(
                fingerprint, self.owner, utcnow(), self.settings.lease_seconds
            )
        except Exception as exc:
            log.info("escalation lease for %s not taken: %s", fingerprint, one_line(exc))
            claimed = False
        if not claimed:
            self.report.busy += 1
            return False
        try:
            work(fingerprint)
        finally:
            self.ledger.release_escalation(fingerprint, self.owner)
        return True

    def _pending(self, fingerprint: str) -> list[EscalationEntry]:
        """The fingerprint's pending entries in queue order (retry time come or not), those this drain
        handled left out (a mark spooled while the ledger was busy still reads as pending)."""
        entries = self.ledger.due_escalations(EVERY_PENDING, self.settings.limit, fingerprint)
        return [entry for entry in entries if entry["id"] not in self.handled]

    def _ready(self, fingerprint: str) -> bool:
        """Whether the fingerprint's queue has a due entry and this drain may still deliver it. Not when
        the last pass stopped at an entry waiting to retry: the entries behind it wait too, and a second
        reading of the clock must not decide otherwise (a clock that steps back and forth would make the
        drain take the lease again and again)."""
        if self.report.delivered >= self.settings.limit or self.head_waiting:
            return False
        entries = self._pending(fingerprint)
        return bool(entries) and _due(entries[0], self.clock())

    def _deliver_fingerprint(self, fingerprint: str) -> None:
        """One pass over the fingerprint's queue; entries queued meanwhile are found by :meth:`_ready`
        after the release, which takes the lease again for them."""
        self.head_waiting = False
        now = self.clock()
        for n, entry in enumerate(self._pending(fingerprint)):
            if self.report.delivered >= self.settings.limit:
                return
            if not _due(entry, now):
                self.head_waiting = True
                return  # in order: a later entry (a resolution) never overtakes one waiting to retry
            if n and not self._renew(fingerprint):
                return  # the lease ran out and another drain holds the fingerprint: it carries on
            self.handled.add(entry["id"])
            try:
                reference = self._deliver(entry)
            except DeliveryFailure as failure:
                self._defer(entry, failure)
                return
            self.ledger.mark_escalated(entry["id"], reference)
            self.report.delivered += 1
            self.report.references[entry["id"]] = reference

    def _renew(self, fingerprint: str) -> bool:
        """Extend this drain's lease before the next entry (many entries and a slow GitHub can outlast
        one lease); False when another drain took the fingerprint meanwhile."""
        try:
            renewed = bool(
                self.ledger.claim_escalation(fingerprint, self.owner, utcnow(), self.settings.lease_seconds)
            )
        except Exception as exc:
            log.info("escalation lease for %s not renewed: %s", fingerprint, one_line(exc))
            return False
        if not renewed:
            log.warning("escalation lease for %s lost to another drain", fingerprint)
        return renewed

    def _deliver(self, entry: EscalationEntry) -> str:
        fingerprint = entry["fingerprint"]
        record = self.ledger.escalation_issue(fingerprint) or _empty(fingerprint)
        if entry.get("kind") == RESOLVE:
            return self._resolve(entry, record)
        now = self.clock()
        if record["number"] and record["state"] == "open" and self._recently_commented(record, now):
            self._save(
                fingerprint,
                unreported=record["unreported"] + 1,
                last_context=_context(entry),
                occurrences=record["occurrences"] + 1,
            )
            self.report.counted += 1
            return record["url"] or ""
        ref = self.sink.find(fingerprint, record["number"])
        if ref is None:
            ref = self.sink.create(fingerprint, entry["title"], entry["body"], list(entry["labels"]))
            self.report.created += 1
        elif ref.state == "closed":
            ref = self.sink.reopen(ref, regressed_comment(entry, record))
            self.report.reopened += 1
        else:
            self.sink.comment(
                ref, occurrence_comment(record["unreported"] + 1, _context(entry), entry["body"])
            )
            self.report.commented += 1
        self._save(
            fingerprint,
            number=ref.number,
            url=ref.url,
            state=ref.state,
            unreported=0,
            occurrences=record["occurrences"] + 1,
            last_context=None,
            last_comment_at=self.clock(),
        )
        return ref.url

    def _resolve(self, entry: EscalationEntry, record: IssueRecord) -> str:
        ref = self.sink.find(entry["fingerprint"], record["number"])
        if ref is None:
            return "no GitHub issue to close"
        if ref.state == "open":
            ref = self.sink.close(ref, resolved_comment(entry, record))
            self.report.closed += 1
        self._save(
            entry["fingerprint"],
            number=ref.number,
            url=ref.url,
            state=ref.state,
            unreported=0,
            last_comment_at=self.clock(),
        )
        return ref.url

    def _report_counted(self, fingerprint: str) -> None:
        record = self.ledger.escalation_issue(fingerprint)
        if record is None or not record["unreported"] or self._recently_commented(record, self.clock()):
            return
        try:
            ref = self.sink.find(fingerprint, record["number"])
            if ref is None:
                return
            text = occurrence_comment(record["unreported"], record["last_context"] or "", "")
            if ref.state == "closed":
                ref = self.sink.reopen(ref, "**Regressed.** " + text)
                self.report.reopened += 1
            else:
                self.sink.comment(ref, text)
                self.report.commented += 1
        except DeliveryFailure as failure:
            self._stop(failure)
            return
        self._save(
            fingerprint, state=ref.state, unreported=0, last_context=None, last_comment_at=self.clock()
        )

    def _recently_commented(self, record: IssueRecord, now: datetime) -> bool:
        last = record["last_comment_at"]
        return last is not None and now - last < self.settings.comment_interval

    def _save(self, fingerprint: str, **values: Any) -> None:
        if not self.ledger.update_escalation_issue(fingerprint, self.owner, self.clock(), **values):
            log.warning("escalation issue of %s not updated: the lease was lost", fingerprint)

    def _defer(self, entry: EscalationEntry, failure: DeliveryFailure) -> None:
        now = self.clock()
        retry_at = now + timedelta(seconds=self.settings.backoff(int(entry["tries"]) + 1, failure, now))
        self.ledger.retry_escalation_later(entry["id"], failure.reason, retry_at)
        self.report.deferred += 1
        self.report.retry_at = retry_at.isoformat()
        self._stop(failure)

    def _stop(self, failure: DeliveryFailure) -> None:
        self.report.errors.append(failure.reason)
        self.stopped = True
        log.warning("GitHub delivery stopped: %s", failure.reason)


def occurrence_comment(count: int, context: str, body: str) -> str:
    """The comment for ``count`` further occurrences, with the newest context."""
    times = "once more" if count == 1 else f"{count} more times"
    text = f"**Seen again** ({times} since the last update)."
    if context:
        text += f"\n\nLatest: {context}"
    if body.strip():
        text += f"\n\n<details><summary>Latest report</summary>\n\n{body.strip()}\n\n</details>"
    return text


def regressed_comment(entry: EscalationEntry, record: IssueRecord) -> str:
    """The comment that reopens a closed issue: the failure came back."""
    return (
        "**Regressed**: this failure came back after the issue was closed; reopening.\n\n"
        f"Latest: {_context(entry)}\n\n<details><summary>Latest report</summary>\n\n"
        f"{entry['body'].strip()}\n\n</details>"
    )


def resolved_comment(entry: EscalationEntry, record: IssueRecord) -> str:
    """The note that closes the issue: the recovery fixed it."""
    note = entry["body"].strip() or entry["title"]
    extra = f" ({record['unreported']} occurrences since the last update)" if record["unreported"] else ""
    return f"**Resolved** by automatic recovery{extra}; closing.\n\n{note}"


def _due(entry: EscalationEntry, now: datetime) -> bool:
    return not entry["next_attempt_at"] or datetime.fromisoformat(entry["next_attempt_at"]) <= now


def _context(entry: EscalationEntry) -> str:
    lines = [line.strip() for line in entry["body"].splitlines() if line.strip()]
    first = lines[0] if lines else entry["title"]
    return " ".join(first.split())[:CONTEXT_CHARS]


def _empty(fingerprint: str) -> IssueRecord:
    return {
        "fingerprint": fingerprint,
        "number": None,
        "url": None,
        "state": None,
        "occurrences": 0,
        "unreported": 0,
        "last_context": None,
        "last_comment_at": None,
    }


__all__ = [
    "DeliveryReport",
    "DeliverySettings",
    "IssueSink",
    "deliver_escalations",
    "occurrence_comment",
    "regressed_comment",
    "resolved_comment",
]
