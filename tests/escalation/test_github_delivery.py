"""The outbox delivers to GitHub once: under 10 concurrent drains, through 5xx and secondary rate limits,
and without a secret in any request body. Real PyGithub, real SQLite ledger, local GitHub stand-in."""

from __future__ import annotations

import itertools
import re
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from support.canaries import all_canaries, assert_no_canary, combined_text
from support.github_stub import Clock, GitHubStub, issues_for

from qubinode_recovery_provider.diagnosis import FailureAnalyzer
from qubinode_recovery_provider.escalation import escalate
from qubinode_recovery_provider.escalation.delivery import DeliverySettings, deliver_escalations
from qubinode_recovery_provider.escalation.github import GitHubIssues
from qubinode_recovery_provider.models import FailureEvent
from qubinode_recovery_provider.recovery import RecoveryPlanner, TaskConfig
from qubinode_recovery_provider.store import Ledger

FP = "fp-vault-denied"
WORKERS, PER_WORKER = 10, 100
INTERVAL = timedelta(seconds=100)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)]  # PostgreSQL: a server starts


class TimedIssues(GitHubIssues):
    """The real sink, noting the test clock's time of every comment."""

    def __init__(self, inner: GitHubIssues, clock: Clock, times: list[datetime]) -> None:
        super().__init__(inner.client, inner.repository)
        self.clock, self.times = clock, times

    def comment(self, ref, text):  # type: ignore[no-untyped-def]
        self.times.append(self.clock())
        super().comment(ref, text)


def _count(comment: str) -> int:
    if "(once more" in comment:
        return 1
    match = re.search(r"\((\d+) more times", comment)
    assert match, comment
    return int(match[1])


@pytest.mark.slow  # about 20 s: a thousand ledger round trips under contention
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_thousand_failures_from_ten_drains_make_one_issue_and_paced_comments(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, github: GitHubStub, clock: Clock
) -> None:
    """Each worker queues an occurrence (one simulated second later than the previous one) and drains.
    Exactly one issue; comments at least INTERVAL apart; every occurrence reported exactly once."""
    ledger_url = request.getfixturevalue("pg_url" if backend == "postgresql" else "ledger_url")
    settings = DeliverySettings(comment_interval=INTERVAL)
    times: list[datetime] = []
    errors: list[BaseException] = []
    drain_errors: list[str] = []

    def worker(n: int) -> None:
        try:
            with Ledger(ledger_url, tmp_path / f"spool-{n}") as ledger:
                sink = TimedIssues(issues_for(github), clock, times)
                for i in range(PER_WORKER):
                    clock.advance(1)
                    ledger.enqueue_escalation(FP, "vault denied", f"**Escalated:** occurrence {n}-{i}", ["q"])
                    report = deliver_escalations(ledger, sink, settings=settings, clock=clock)
                    drain_errors.extend(report.errors)
                ledger.flush_spool()
        except BaseException as exc:  # reported below
            errors.append(exc)

    with Ledger(ledger_url, tmp_path / "spool") as ledger:
        ledger.migrate()
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    assert not errors
    assert not any(t.is_alive() for t in threads)

    with Ledger(ledger_url, tmp_path / "spool") as ledger:
        sink = TimedIssues(issues_for(github), clock, times)
        # What the workers' drains left (at most `limit` per drain, so a backlog of any size under
        # contention): every drain delivers some, and they empty the queue in a bounded number.
        drains = 0
        while ledger.pending_escalations():
            report = deliver_escalations(ledger, sink, settings=settings, clock=clock)
            drains += 1
            # a failed drain says why (the workers' drains may have met a busy ledger: reported, not lost)
            assert (report.delivered > 0, report.errors, report.busy) == (True, [], 0), drain_errors[:5]
        assert drains <= WORKERS * PER_WORKER // settings.limit
        clock.advance(INTERVAL.total_seconds())
        deliver_escalations(ledger, sink, settings=settings, clock=clock)  # the counted rest
        assert ledger.pending_escalations() == []
        assert ledger.escalation_issue(FP)["unreported"] == 0  # type: ignore[index]

    assert len(github.calls("POST", r"/issues$")) == 1
    comments = github.comments[1]
    assert 1 + sum(_count(c) for c in comments) == WORKERS * PER_WORKER
    span = WORKERS * PER_WORKER + INTERVAL.total_seconds()
    assert 1 <= len(comments) <= span // INTERVAL.total_seconds() + 1
    assert all(later - earlier >= INTERVAL for earlier, later in itertools.pairwise(times))


def test_an_outage_then_a_secondary_rate_limit_delivers_once_after_retry_after(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    settings = DeliverySettings(base_backoff_seconds=60)
    outbox_id = ledger.enqueue_escalation(FP, "vault denied", "**Escalated:** vault denied", ["q"])
    start = clock()

    github.fail_next(502, "Server Error")
    first = deliver_escalations(ledger, issues, settings=settings, clock=clock)
    entry = ledger.escalation_entry(outbox_id)
    assert (first.deferred, first.delivered) == (1, 0)
    assert entry is not None
    assert entry["tries"] == 1
    assert "502" in (entry["last_error"] or "")
    assert entry["next_attempt_at"] == (start + timedelta(seconds=60)).isoformat()

    clock.advance(30)  # not due yet: nothing is sent
    sent = len(github.requests)
    assert deliver_escalations(ledger, issues, settings=settings, clock=clock).delivered == 0
    assert len(github.requests) == sent

    clock.advance(30)
    github.fail_next(403, "You have exceeded a secondary rate limit.", {"Retry-After": "600"})
    second = deliver_escalations(ledger, issues, settings=settings, clock=clock)
    entry = ledger.escalation_entry(outbox_id)
    assert second.deferred == 1
    assert entry is not None
    assert entry["tries"] == 2
    assert entry["next_attempt_at"] == (clock() + timedelta(seconds=600)).isoformat()

    clock.advance(599)
    assert deliver_escalations(ledger, issues, settings=settings, clock=clock).delivered == 0
    clock.advance(1)
    third = deliver_escalations(ledger, issues, settings=settings, clock=clock)
    assert (third.delivered, third.created, third.errors) == (1, 1, [])
    assert deliver_escalations(ledger, issues, settings=settings, clock=clock).delivered == 0
    assert [r.status for r in github.calls("POST", r"/issues$")] == [201]
    assert len(github.issues) == 1


def test_a_rate_limit_reset_without_retry_after_is_honoured(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    outbox_id = ledger.enqueue_escalation(FP, "t", "b", ["q"])
    reset = int(clock().timestamp()) + 1800
    github.fail_next(
        403, "API rate limit exceeded", {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
    )
    deliver_escalations(ledger, issues, settings=DeliverySettings(), clock=clock)
    entry = ledger.escalation_entry(outbox_id)
    assert entry is not None
    assert entry["next_attempt_at"] == datetime.fromtimestamp(reset, clock().tzinfo).isoformat()


def test_no_request_body_holds_a_canary_secret(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock, tmp_path: Path, monkeypatch
) -> None:
    """Canaries in the failure text, the log tail, the context and the recovery run's details reach no
    request."""
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__GITHUB_REPOSITORY", "acme/infra-incidents")
    secrets = combined_text()
    text = "vault: Error making API request. Code: 403. permission denied\n" + secrets
    event = FailureEvent(
        dag_id="build_vm", task_id="fetch", run_id="r1", exception_text=text, log_tail=secrets.splitlines()
    )
    diagnosis = FailureAnalyzer().analyze(event)
    lines = secrets.splitlines()  # the context snapshot: what the probes saw
    diagnosis = diagnosis.model_copy(update={"corroboration": lines, "contradictions": lines[:3]})
    ledger.record_failure(event, diagnosis)
    plan = RecoveryPlanner(events=None).plan_recovery(
        diagnosis, TaskConfig(dag_id="build_vm", task_id="fetch", run_id="r1")
    )
    escalate(ledger, plan, [f"failed: {secrets}"], diagnosis=diagnosis, details=secrets, directory=tmp_path)
    report = deliver_escalations(ledger, issues, settings=DeliverySettings(), clock=clock)
    assert report.created == 1

    ledger.enqueue_escalation(plan.fingerprint, "again", "**Escalated:** again\n" + secrets, ["q"])
    clock.advance(7200)
    assert deliver_escalations(ledger, issues, clock=clock).commented == 1
    sent = "\n".join(github.bodies() + [r.path for r in github.requests])
    assert "Diagnosis" in sent
    assert "### Context" in sent
    assert_no_canary(sent, all_canaries())


class QueueingWhileHeld(GitHubIssues):
    """The real sink; creating the issue takes long enough for another worker to queue an occurrence
    and find the fingerprint's lease taken (its own drain delivers nothing)."""

    def __init__(self, inner: GitHubIssues, ledger: Ledger, clock: Clock) -> None:
        super().__init__(inner.client, inner.repository)
        self.ledger, self.clock, self.reports = ledger, clock, []  # type: ignore[var-annotated]

    def create(self, fingerprint, title, body, labels):  # type: ignore[no-untyped-def]
        ref = super().create(fingerprint, title, body, labels)
        self.ledger.enqueue_escalation(FP, "vault denied", "**Escalated:** while held", ["q"])
        self.reports.append(deliver_escalations(self.ledger, self, clock=self.clock))
        return ref


def test_occurrences_queued_while_a_drain_holds_the_lease_are_delivered_by_that_drain(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    ledger.enqueue_escalation(FP, "vault denied", "**Escalated:** first", ["q"])
    sink = QueueingWhileHeld(issues, ledger, clock)
    report = deliver_escalations(ledger, sink, clock=clock)
    assert [r.busy for r in sink.reports] == [1]
    assert sink.reports[0].delivered == 0
    assert (report.delivered, report.created, report.counted) == (2, 1, 1)
    assert ledger.pending_escalations() == []
    assert ledger.escalation_issue(FP)["occurrences"] == 2  # type: ignore[index]


class QueuedBeforeRelease(Ledger):
    """A ledger where another worker queues an occurrence (and finds the lease taken) just after the
    holding drain's last read and before it lets go of the lease."""

    queued = False

    def release_escalation(self, fingerprint: str, owner: str) -> None:
        if not self.queued:
            self.queued = True
            self.enqueue_escalation(FP, "vault denied", "**Escalated:** just before the release", ["q"])
            assert not self.claim_escalation(FP, "another worker", datetime.now().astimezone(), 300)
        super().release_escalation(fingerprint, owner)


def test_an_occurrence_queued_just_before_the_release_is_not_left_for_the_next_drain(
    ledger_url: str, tmp_path: Path, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    with QueuedBeforeRelease(ledger_url, tmp_path / "spool") as ledger:
        ledger.migrate()
        ledger.enqueue_escalation(FP, "vault denied", "**Escalated:** first", ["q"])
        report = deliver_escalations(ledger, issues, clock=clock)
        assert ledger.queued
        assert (report.delivered, report.created, report.counted) == (2, 1, 1)
        assert ledger.pending_escalations() == []


def test_one_drain_delivers_at_most_its_limit_and_the_next_one_the_rest(
    ledger: Ledger, issues: GitHubIssues, clock: Clock
) -> None:
    for n in range(7):
        ledger.enqueue_escalation(FP, "vault denied", f"**Escalated:** occurrence {n}", ["q"])
    settings = DeliverySettings(limit=3)
    assert deliver_escalations(ledger, issues, settings=settings, clock=clock).delivered == 3
    assert len(ledger.pending_escalations()) == 4
    assert deliver_escalations(ledger, issues, settings=settings, clock=clock).delivered == 3
    assert deliver_escalations(ledger, issues, settings=settings, clock=clock).delivered == 1
    assert ledger.pending_escalations() == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_of_ten_simultaneous_claims_one_wins_and_an_expired_lease_is_taken_over(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    ledger_url = request.getfixturevalue("pg_url" if backend == "postgresql" else "ledger_url")
    with Ledger(ledger_url, tmp_path / "spool") as ledger:
        ledger.migrate()
    now = datetime.now().astimezone()
    start = threading.Barrier(10)
    won: list[str] = []

    def claim(n: int) -> None:
        with Ledger(ledger_url, tmp_path / f"spool-{n}") as ledger:
            start.wait(30)
            if ledger.claim_escalation(FP, f"worker-{n}", now, 300):
                won.append(f"worker-{n}")

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(won) == 1
    with Ledger(ledger_url, tmp_path / "spool") as ledger:
        assert not ledger.claim_escalation(FP, "late", now + timedelta(seconds=299), 300)
        assert not ledger.update_escalation_issue(FP, "late", now, unreported=5)  # fenced: not the holder
        assert ledger.claim_escalation(FP, "late", now + timedelta(seconds=301), 300)  # the holder died
        ledger.release_escalation(FP, "late")
        assert ledger.claim_escalation(FP, "next", now, 300)


def test_github_unreachable_keeps_the_entry_with_a_backoff(ledger: Ledger, clock: Clock) -> None:
    from support.processes import free_port

    from qubinode_recovery_provider.escalation.github import github_client

    client = github_client(
        "token", base_url=f"http://127.0.0.1:{free_port()}", timeout=5, seconds_between_requests=None
    )
    outbox_id = ledger.enqueue_escalation(FP, "t", "b", ["q"])
    report = deliver_escalations(ledger, GitHubIssues(client, "acme/infra-incidents"), clock=clock)
    entry = ledger.escalation_entry(outbox_id)
    assert report.deferred == 1
    assert "ConnectionError" in report.errors[0]
    assert entry is not None
    assert entry["status"] == "pending"
    assert entry["next_attempt_at"] == (clock() + timedelta(seconds=60)).isoformat()


@pytest.mark.parametrize(
    ("status", "message", "headers", "wait"),
    [
        (429, "Too Many Requests", {"Retry-After": "900"}, 900),  # abuse / secondary limit
        (403, "You have triggered an abuse detection mechanism.", {}, 60),  # no hint: the backoff
        (401, "Bad credentials", {}, 3600),  # a retry cannot fix it: the longest backoff
        (404, "Not Found", {}, 3600),
    ],
)
def test_each_refusal_waits_as_long_as_it_should(
    status: int,
    message: str,
    headers: dict[str, str],
    wait: int,
    ledger: Ledger,
    issues: GitHubIssues,
    github: GitHubStub,
    clock: Clock,
) -> None:
    outbox_id = ledger.enqueue_escalation(FP, "t", "b", ["q"])
    github.fail_next(status, message, headers)
    report = deliver_escalations(ledger, issues, settings=DeliverySettings(), clock=clock)
    entry = ledger.escalation_entry(outbox_id)
    assert report.errors == [f"GitHub answered {status}: {message}"]
    assert entry is not None
    assert entry["next_attempt_at"] == (clock() + timedelta(seconds=wait)).isoformat()


@pytest.mark.parametrize("tries", [1, 2, 7, 1100, 10**6])
def test_the_backoff_doubles_up_to_its_bound_however_many_tries_failed(tries: int) -> None:
    from qubinode_recovery_provider.escalation.github import DeliveryFailure

    settings = DeliverySettings()
    now = datetime(2026, 12, 3)
    wait = settings.backoff(tries, DeliveryFailure("502 Bad Gateway"), now)
    expected = min(settings.max_backoff_seconds, settings.base_backoff_seconds * 2 ** min(tries - 1, 32))
    assert wait == expected
    assert (
        settings.backoff(tries, DeliveryFailure("401", transient=False), now) == settings.max_backoff_seconds
    )


def test_a_clock_stepping_back_and_forth_around_a_retry_time_ends_the_drain(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    """The drain stopped at the entry waiting to retry, then read the clock again to decide whether to
    take the lease once more: a clock on the other side of the retry time each time made it loop
    (bounded here: the clock gives up after 1,000 readings)."""
    ledger.enqueue_escalation(FP, "vault denied", "**Escalated:** first", ["q"])
    github.fail_next(502, "Server Error")
    settings = DeliverySettings(base_backoff_seconds=60)
    assert deliver_escalations(ledger, issues, settings=settings, clock=clock).deferred == 1
    retry_at = clock() + timedelta(seconds=60)
    readings = itertools.count(1)

    def stepping() -> datetime:  # after the retry time, before it, after it, ...
        reading = next(readings)
        if reading > 1000:
            raise RuntimeError("the drain never ended")
        return retry_at + timedelta(seconds=1 if reading % 2 else -1)

    sent = len(github.requests)
    report = deliver_escalations(ledger, issues, settings=settings, clock=stepping)
    assert (report.delivered, report.errors) == (0, [])
    assert len(github.requests) == sent
    assert next(readings) < 10
