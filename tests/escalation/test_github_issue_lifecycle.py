"""One GitHub issue per fingerprint through the real PyGithub client and a local stand-in of the API:
created once, found again by its marker, commented at most once per interval, reopened on regression,
closed when the recovery fixed it."""

from __future__ import annotations

from datetime import timedelta

from support.github_stub import Clock, GitHubStub

from qubinode_recovery_provider.escalation.delivery import DeliverySettings, deliver_escalations
from qubinode_recovery_provider.escalation.github import GitHubIssues, marker
from qubinode_recovery_provider.escalation.outbox import queue_resolution
from qubinode_recovery_provider.store import Ledger

FP = "fp-libvirt-down"
SETTINGS = DeliverySettings(comment_interval=timedelta(minutes=30))


def enqueue(ledger: Ledger, reason: str = "libvirtd is not running") -> int:
    return ledger.enqueue_escalation(
        FP,
        "[qubinode-recovery] service_dependency failure in build_vm.create",
        f"**Escalated:** {reason}\n\nplan",
        ["qubinode-recovery", "root-cause:service_dependency", "severity:high"],
    )


def drain(ledger: Ledger, issues: GitHubIssues, clock: Clock):
    return deliver_escalations(ledger, issues, settings=SETTINGS, clock=clock)


def test_the_first_escalation_opens_one_issue_with_marker_and_labels(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    outbox_id = enqueue(ledger)
    report = drain(ledger, issues, clock)

    assert (report.created, report.delivered, report.errors) == (1, 1, [])
    issue = github.issues[1]
    assert issue["body"].startswith(marker(FP) + "\n")
    assert issue["labels"] == ["qubinode-recovery", "root-cause:service_dependency", "severity:high"]
    url = "https://github.example/acme/infra-incidents/issues/1"
    assert report.references == {outbox_id: url}
    assert ledger.pending_escalations() == []
    assert ledger.escalation_issue(FP)["number"] == 1  # type: ignore[index]


def test_an_issue_is_found_again_by_its_marker_when_the_ledger_forgot_it(
    tmp_path, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    with Ledger(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "sa") as first:
        first.migrate()
        enqueue(first)
        drain(first, issues, clock)
    with Ledger(f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "sb") as fresh:  # a new ledger: no issue number
        fresh.migrate()
        enqueue(fresh, "seen again after a restart")
        report = drain(fresh, issues, clock)
    assert (report.created, report.commented) == (0, 1)
    assert len(github.issues) == 1
    assert len(github.calls("GET", r"^/search/issues")) == 2
    assert "seen again after a restart" in github.comments[1][0]


def test_occurrences_within_the_interval_are_counted_into_the_next_comment(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    enqueue(ledger)
    drain(ledger, issues, clock)
    for n in range(5):
        clock.advance(60)
        enqueue(ledger, f"occurrence {n}")
        report = drain(ledger, issues, clock)
        assert (report.counted, report.commented) == (1, 0)
    assert github.comments == {}
    assert len(github.requests) == 3  # search, repository, create: counting sends nothing

    clock.advance(30 * 60)
    report = drain(ledger, issues, clock)  # no new entry: the counted ones are reported
    assert report.commented == 1
    (comment,) = github.comments[1]
    assert "5 more times" in comment
    assert "occurrence 4" in comment
    assert ledger.escalation_issue(FP)["unreported"] == 0  # type: ignore[index]


def test_a_closed_issue_whose_failure_comes_back_is_reopened_as_regressed(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    enqueue(ledger)
    drain(ledger, issues, clock)
    github.issues[1]["state"] = "closed"  # a person closed it on GitHub
    clock.advance(31 * 60)
    enqueue(ledger, "libvirtd died again")
    report = drain(ledger, issues, clock)

    assert (report.reopened, report.created) == (1, 0)
    assert github.issues[1]["state"] == "open"
    (comment,) = github.comments[1]
    assert comment.startswith("**Regressed**")
    assert "libvirtd died again" in comment


def test_a_resolved_incident_closes_its_issue_with_a_note(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    assert queue_resolution(ledger, FP, "nothing escalated yet") is None
    enqueue(ledger)
    drain(ledger, issues, clock)
    assert queue_resolution(ledger, FP, "The recovery run `manual__1` retried the task; it succeeded.")
    report = drain(ledger, issues, clock)

    assert report.closed == 1
    assert (github.issues[1]["state"], github.issues[1]["state_reason"]) == ("closed", "completed")
    (note,) = github.comments[1]
    assert note.startswith("**Resolved** by automatic recovery")
    assert "manual__1" in note
    assert queue_resolution(ledger, FP, "again") is None  # closed: nothing more to close


def test_comment_bodies_are_bounded_to_githubs_limit(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    ledger.enqueue_escalation(FP, "t", "x " * 50_000, ["qubinode-recovery"])
    drain(ledger, issues, clock)
    body = github.issues[1]["body"]
    assert len(body) <= 65536
    assert body.startswith(marker(FP))
    assert "truncated" in body[-200:]


def test_a_resolution_waits_for_the_escalation_it_follows(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    settings = DeliverySettings(base_backoff_seconds=60)
    enqueue(ledger)
    github.fail_next(500, "Server Error")
    assert deliver_escalations(ledger, issues, settings=settings, clock=clock).deferred == 1
    assert queue_resolution(ledger, FP, "fixed by the recovery run")  # the escalation still waits

    sent = len(github.requests)
    clock.advance(30)
    report = deliver_escalations(ledger, issues, settings=settings, clock=clock)
    assert (report.delivered, len(github.requests)) == (0, sent)  # the resolution does not overtake it

    clock.advance(30)
    report = deliver_escalations(ledger, issues, settings=settings, clock=clock)
    assert (report.created, report.closed, report.delivered) == (1, 1, 2)
    assert github.issues[1]["state"] == "closed"
