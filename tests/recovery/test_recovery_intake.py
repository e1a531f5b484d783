"""Whether a failure or a shadow finding starts a recovery run (plain values, a real SQLite ledger)."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from recovery_workers import record_automatic_attempts

from qubinode_recovery_provider.models import (
    Incident,
    IncidentState,
    Severity,
    ShadowError,
    ShadowErrorType,
)
from qubinode_recovery_provider.recovery import RecoveryPolicy
from qubinode_recovery_provider.recovery.intake import (
    DEFAULT_WINDOW,
    EarlierRequest,
    IntakeVerdict,
    failure_starts_run,
    finding_starts_run,
)
from qubinode_recovery_provider.store import Ledger

WINDOW = datetime.timedelta(minutes=60)
POLICY = RecoveryPolicy(breaker_window=WINDOW)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _incident(
    occurrences: int, age_minutes: float = 0, state: IncidentState = IncidentState.OPEN
) -> Incident:
    now = _now()
    return Incident(
        fingerprint="fp",
        occurrences=occurrences,
        state=state,
        first_seen=now - datetime.timedelta(minutes=age_minutes),
        last_seen=now,
        hosts=["kvm-01"],
    )


def test_verdict_new_incident(ledger: Ledger) -> None:
    verdict = failure_starts_run(_incident(1), None, ledger, POLICY)
    assert verdict == IntakeVerdict(True, "new incident")


def test_verdict_repeat_inside_the_window_is_not_started_again(ledger: Ledger) -> None:
    verdict = failure_starts_run(_incident(4, age_minutes=5), None, ledger, POLICY)
    assert verdict.start is False
    assert "inside the circuit breaker window" in verdict.reason


def test_verdict_repeat_after_the_window_asks_the_breaker(ledger: Ledger) -> None:
    verdict = failure_starts_run(_incident(4, age_minutes=90), None, ledger, POLICY)
    assert verdict == IntakeVerdict(True, "repeat #4 of an open incident, no recovery run in the window")
    record_automatic_attempts(ledger, "fp", POLICY.breaker_max_attempts)
    verdict = failure_starts_run(_incident(4, age_minutes=90), None, ledger, POLICY)
    assert (verdict.start, verdict.reason) == (
        False,
        "circuit breaker open: 3 automatic attempt(s) for this fingerprint in the last 60 min (limit 3)",
    )


def test_verdict_respects_a_recent_request_and_the_incident_state(ledger: Ledger) -> None:
    recent = EarlierRequest(_now(), "sent")
    verdict = failure_starts_run(_incident(1), recent, ledger, POLICY)
    assert verdict.start is False
    assert "requested 0 min ago (sent)" in verdict.reason
    assert verdict.resend is False
    old = EarlierRequest(_now() - datetime.timedelta(hours=3), "sent")
    assert failure_starts_run(_incident(1), old, ledger, POLICY).start is True
    for state in (IncidentState.RECOVERING, IncidentState.ESCALATED):
        verdict = failure_starts_run(_incident(1, state=state), None, ledger, POLICY)
        assert verdict == IntakeVerdict(False, f"the incident is {state.value}")


def test_a_request_still_pending_within_the_window_is_sent_again(ledger: Ledger) -> None:
    pending = EarlierRequest(_now() - datetime.timedelta(minutes=10), "pending")
    verdict = failure_starts_run(_incident(2, age_minutes=10), pending, ledger, POLICY)
    assert (verdict.start, verdict.resend) == (False, True)
    assert verdict.reason == "a recovery run was requested 10 min ago (pending)"
    stale = EarlierRequest(_now() - datetime.timedelta(hours=3), "pending")
    assert failure_starts_run(_incident(1), stale, ledger, POLICY).resend is False


@pytest.mark.parametrize(("switch", "expected"), [(False, False), (True, None), (None, None)])
def test_the_dag_switch_goes_with_the_run_it_starts(
    ledger: Ledger, switch: bool | None, expected: bool | None
) -> None:
    new = failure_starts_run(_incident(1), None, ledger, POLICY, dag_auto_recovery=switch)
    repeat = failure_starts_run(_incident(4, age_minutes=90), None, ledger, POLICY, dag_auto_recovery=switch)
    assert (new.start, new.enable_auto_recovery) == (True, expected)
    assert (repeat.start, repeat.enable_auto_recovery) == (True, expected)


def test_an_unreadable_policy_or_ledger_starts_no_repeat(ledger: Ledger, tmp_path: Path) -> None:
    assert failure_starts_run(_incident(1), None, ledger, None).start is True  # a new incident still does
    half_window = DEFAULT_WINDOW.total_seconds() / 60 / 2  # the default window applies
    inside = failure_starts_run(_incident(4, age_minutes=half_window), None, ledger, None)
    assert "inside the circuit breaker window" in inside.reason
    verdict = failure_starts_run(_incident(4, age_minutes=90), None, ledger, None)
    assert verdict == IntakeVerdict(
        False, "circuit breaker state unknown (the recovery policy cannot be read); repeat not started"
    )
    (tmp_path / "not_a_dir").write_text("")
    broken = Ledger(f"sqlite:///{tmp_path / 'not_a_dir' / 'ledger.db'}", tmp_path / "spool", timeout=0.2)
    verdict = failure_starts_run(_incident(4, age_minutes=90), None, broken, POLICY)
    assert verdict.start is False
    assert verdict.reason.startswith("circuit breaker cannot read the ledger (")


def _finding(severity: Severity) -> ShadowError:
    return ShadowError(
        type=ShadowErrorType.VM_NOT_CREATED, dag_id="kcli_build", confidence=0.9, severity=severity
    )


@pytest.mark.parametrize(
    ("severity", "is_new", "start_recovery", "started", "expected"),
    [
        (Severity.CRITICAL, True, True, 0, True),
        (Severity.CRITICAL, True, True, 2, False),  # the cap
        (Severity.CRITICAL, False, True, 0, False),  # seen before
        (Severity.CRITICAL, True, False, 0, False),  # not asked for
        (Severity.HIGH, True, True, 0, False),  # escalated, not recovered
    ],
)
def test_a_finding_starts_a_run_when_new_critical_asked_for_and_under_the_cap(
    severity: Severity, is_new: bool, start_recovery: bool, started: int, expected: bool
) -> None:
    verdict = finding_starts_run(
        _finding(severity), is_new=is_new, start_recovery=start_recovery, started=started, max_runs=2
    )
    assert verdict is expected
