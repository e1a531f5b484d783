"""Hostile inputs against the GitHub sink, through the real PyGithub client and the local stand-in: text
that carries another fingerprint's marker, fingerprints that are not ours, odd answers of the API."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from support.canaries import assert_no_canary, canary_items
from support.github_stub import TOKEN, Clock, GitHubStub, issues_for

from qubinode_recovery_provider.escalation.delivery import DeliverySettings, deliver_escalations
from qubinode_recovery_provider.escalation.github import (
    MARKER_PREFIX,
    GitHubIssues,
    classify,
    issues_from_env,
    marker,
)
from qubinode_recovery_provider.models import utcnow
from qubinode_recovery_provider.recovery.planner import GitHubSettings, RecoveryPlanner
from qubinode_recovery_provider.store import Ledger

SETTINGS = DeliverySettings(comment_interval=timedelta(minutes=30))
LABELS = ["qubinode-recovery", "root-cause:network"]


def drain(ledger: Ledger, issues: GitHubIssues, clock: Clock):
    return deliver_escalations(ledger, issues, settings=SETTINGS, clock=clock)


def test_a_report_quoting_another_fingerprints_marker_does_not_capture_its_escalations(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    # the failure text of "aaaa" quotes the marker of "bbbb" (a log can say anything)
    ledger.enqueue_escalation("aaaa", "failure a", f"log: {marker('bbbb')} and more", LABELS)
    drain(ledger, issues, clock)
    ledger.enqueue_escalation("bbbb", "failure b", "the real b", LABELS)
    report = drain(ledger, issues, clock)

    assert (report.created, report.commented, report.errors) == (1, 0, [])
    assert sorted(github.issues) == [1, 2]
    assert github.issues[2]["body"].startswith(marker("bbbb") + "\n")
    assert MARKER_PREFIX not in github.issues[1]["body"].split("\n", 1)[1]  # neutralised in the report
    assert github.comments == {}


def test_a_fingerprint_that_could_rewrite_the_search_query_is_refused(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    hostile = 'x" repo:evil/repo "'
    ledger.enqueue_escalation(hostile, "failure", "body", LABELS)
    report = drain(ledger, issues, clock)

    assert report.delivered == 0
    assert report.deferred == 1
    assert "fingerprint" in report.errors[0]
    assert github.requests == []  # nothing was sent


def test_a_success_answer_with_junk_json_is_a_deferred_delivery_not_a_ledger_error(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    ledger.enqueue_escalation("cccc", "failure c", "body", LABELS)
    github.fail_next(201, "not an issue", method="POST")  # the creation answers without an issue
    report = drain(ledger, issues, clock)

    assert report.deferred == 1
    assert report.retry_at is not None
    assert not any(error.startswith("ledger:") for error in report.errors)


def test_a_rate_limit_reset_far_in_the_future_is_a_long_wait_not_a_crash(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    ledger.enqueue_escalation("dddd", "failure d", "body", LABELS)
    github.fail_next(
        403,
        "API rate limit exceeded",
        {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "9" * 30, "retry-after": "9" * 30},
    )
    report = drain(ledger, issues, clock)

    assert report.deferred == 1
    assert report.retry_at is not None
    assert "403" in report.errors[0]
    assert datetime.fromisoformat(report.retry_at) <= clock() + timedelta(days=1)
    pending = ledger.pending_escalations()
    assert len(pending) == 1
    assert pending[0]["tries"] == 1


@pytest.mark.parametrize(
    "repository",
    ["acme", "acme/infra incidents", "acme/..", "acme/infra is:pr", "-acme/infra", "acme/inf\nra", "a/b/c"],
)
def test_a_repository_that_is_not_owner_name_is_refused_before_anything_is_sent(
    github: GitHubStub, repository: str
) -> None:
    with pytest.raises(ValueError, match="owner/name"):
        issues_for(github, repository)
    with pytest.raises(ValueError, match="owner/name"):
        issues_from_env(
            {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": repository, "GITHUB_API_URL": github.url}
        )
    with pytest.raises(ValueError, match="owner/name"):  # when it is made, not after a recovery ran
        RecoveryPlanner(github_token=TOKEN, github_repo=repository)
    assert github.requests == []


def test_the_guide_planner_and_the_cli_read_the_same_environment(
    github: GitHubStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/from-env")
    monkeypatch.setenv("GITHUB_API_URL", github.url)
    settings = GitHubSettings.of(TOKEN, None, None)
    assert settings is not None
    assert (settings.repository, settings.api_url) == ("acme/from-env", github.url)
    assert GitHubSettings.of(None, "acme/x", None) is None


def test_a_malformed_comment_interval_is_a_reported_error_not_an_exception(
    ledger: Ledger, github: GitHubStub, monkeypatch: pytest.MonkeyPatch, isolated_config: None
) -> None:
    from qubinode_recovery_provider.hooks.github import deliver_pending

    conn = {"conn_type": "github", "host": github.url, "password": TOKEN}
    monkeypatch.setenv("AIRFLOW_CONN_GITHUB_DEFAULT", json.dumps(conn))
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__GITHUB_REPOSITORY", github.full_name)
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__GITHUB_COMMENT_INTERVAL_MINUTES", "soon")
    ledger.enqueue_escalation("eeee", "failure e", "body", LABELS)

    report = deliver_pending(ledger)  # what the recovery DAG's escalate step calls: it must not fail

    assert report is not None
    assert any("github_comment_interval_minutes" in error for error in report.errors)
    assert len(ledger.pending_escalations()) == 1
    assert github.requests == []

    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__GITHUB_COMMENT_INTERVAL_MINUTES", "9" * 20)
    report = deliver_pending(ledger)  # clipped to a year (it overflowed a timedelta)
    assert report is not None
    assert (report.created, report.errors) == (1, [])
    assert DeliverySettings.from_config().comment_interval == timedelta(days=366)


def test_a_connection_error_that_quotes_a_secret_is_redacted_in_the_reason() -> None:
    """The reason goes to the ledger (``last_error``), the drain's report and the command's stderr."""
    for text, canaries in canary_items():
        failure = classify(ConnectionError(f"proxy refused: {text}"))
        assert_no_canary(failure.reason, canaries)


def test_an_issue_of_a_longer_fingerprint_with_the_same_prefix_is_not_taken(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    ledger.enqueue_escalation("abc1234", "longer", "the longer one", LABELS)
    drain(ledger, issues, clock)
    ledger.enqueue_escalation("abc123", "shorter", "the shorter one", LABELS)
    report = drain(ledger, issues, clock)

    assert (report.created, report.commented) == (1, 0)
    assert github.issues[2]["body"].startswith(marker("abc123") + "\n")


def test_a_deleted_issue_gone_410_gets_a_new_issue_instead_of_wedging_the_fingerprint(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    ledger.enqueue_escalation("ffff", "failure f", "first", LABELS)
    drain(ledger, issues, clock)
    with github.lock:  # an admin deleted the issue: GitHub answers 410 Gone for its number
        github.issues.clear()
    github.fail_next(410, "This issue was deleted", method="GET")
    clock.advance(31 * 60)
    ledger.enqueue_escalation("ffff", "failure f", "again", LABELS)
    report = drain(ledger, issues, clock)

    assert (report.created, report.errors, report.deferred) == (1, [], 0)
    assert ledger.pending_escalations() == []


class _Intruding:
    """The real sink, and a second drain that tries to take the fingerprint while the first is busy."""

    def __init__(self, sink: GitHubIssues, ledger: Ledger, lease: float) -> None:
        self.sink, self.ledger, self.lease = sink, ledger, lease
        self.after_first_call: datetime | None = None
        self.comments = 0
        self.intruder_won: bool | None = None

    def find(self, fingerprint: str, number: int | None = None):  # type: ignore[no-untyped-def]
        return self.sink.find(fingerprint, number)

    def create(self, fingerprint: str, title: str, body: str, labels: list[str]):  # type: ignore[no-untyped-def]
        ref = self.sink.create(fingerprint, title, body, labels)
        self.after_first_call = utcnow()
        return ref

    def comment(self, ref, text: str) -> None:  # type: ignore[no-untyped-def]
        self.comments += 1
        if self.comments == 2:  # the third entry: a lease taken at the start would have expired by now
            assert self.after_first_call is not None
            now = self.after_first_call + timedelta(seconds=self.lease)
            self.intruder_won = self.ledger.claim_escalation("gggg", "intruder", now, self.lease)
        self.sink.comment(ref, text)

    def reopen(self, ref, text: str):  # type: ignore[no-untyped-def]
        return self.sink.reopen(ref, text)

    def close(self, ref, text: str):  # type: ignore[no-untyped-def]
        return self.sink.close(ref, text)


def test_a_drain_keeps_its_lease_from_entry_to_entry(
    ledger: Ledger, issues: GitHubIssues, github: GitHubStub, clock: Clock
) -> None:
    """A long drain (many entries, a slow GitHub) renews the fingerprint's lease before each entry, so a
    second drain never takes the fingerprint in the middle and comments or creates beside it."""
    lease = 300.0
    for n in range(3):
        ledger.enqueue_escalation("gggg", "failure g", f"occurrence {n}", LABELS)
    sink = _Intruding(issues, ledger, lease)
    settings = DeliverySettings(comment_interval=timedelta(0), lease_seconds=lease)
    report = deliver_escalations(ledger, sink, settings=settings, clock=clock)

    assert (report.created, report.commented, report.errors) == (1, 2, [])
    assert sink.intruder_won is False


def test_a_guide_planner_with_a_token_but_no_repository_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    with caplog.at_level("WARNING", logger="qubinode_recovery_provider.recovery.planner"):
        assert GitHubSettings.of(TOKEN, None, None) is None
    assert "GITHUB_REPOSITORY" in caplog.text
    assert TOKEN not in caplog.text
