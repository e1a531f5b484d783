"""Outcome learning: recorded attempts move an action's confidence for that fingerprint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from recovery_helpers import option_types

from qubinode_recovery_provider.models import AttemptOutcome, Diagnosis, RecoveryAttempt, RootCause
from qubinode_recovery_provider.recovery import RETRY_FROM_FAILURE, RecoveryPlanner, TaskConfig
from qubinode_recovery_provider.recovery.learning import learn, posterior_confidence
from qubinode_recovery_provider.store import Ledger

MakeDiagnosis = Callable[..., Diagnosis]


def test_posterior_is_the_base_without_history_and_follows_the_evidence() -> None:
    assert posterior_confidence(0.8, 0, 0) == pytest.approx(0.8)
    assert posterior_confidence(0.8, 0, 2) == pytest.approx(6.4 / 10)
    assert posterior_confidence(0.8, 10, 0) > 0.9
    assert posterior_confidence(0.8, 0, 50) < 0.15
    assert posterior_confidence(0.5, 3, 3) == pytest.approx(0.5)
    assert posterior_confidence(1.5, 0, 0) == 1.0


class BrokenStats:
    def action_outcomes(self, fingerprint: str, action: str) -> tuple[int, int]:
        raise RuntimeError("ledger locked")


def test_unreadable_statistics_leave_the_base() -> None:
    learned = learn(BrokenStats(), "fp", RETRY_FROM_FAILURE, 0.8)
    assert learned.value == 0.8
    assert learned.observations == 0
    assert learn(None, "fp", RETRY_FROM_FAILURE, 0.8).value == 0.8


def record(ledger: Ledger, fingerprint: str, action: str, outcome: AttemptOutcome, n: int) -> None:
    for i in range(n):
        key = f"{fingerprint}|run{i}|{action}|{outcome.value}"
        ledger.begin_attempt(
            RecoveryAttempt(incident_fingerprint=fingerprint, idempotency_key=key, action=action)
        )
        ledger.finish_attempt(key, outcome, "recorded by the test")


def test_a_retry_that_never_works_stops_being_recommended(
    ledger: Ledger, diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    d = diagnosis(RootCause.NETWORK)
    planner = RecoveryPlanner(ledger=ledger, events=None, min_auto_confidence=0.7)
    before = planner.plan_recovery(d, task)
    assert before.options[0].type.value == "retry"

    record(ledger, d.fingerprint, RETRY_FROM_FAILURE, AttemptOutcome.FAILED, 2)
    after = planner.plan_recovery(d, task)

    assert option_types(after) == ["manual_fix", "escalate", "skip", "retry"]
    retry = after.options[-1]
    assert not retry.automatic
    assert retry.confidence < before.options[0].confidence
    assert "0 success(es) and 2 failure(s)" in retry.reason
    assert "learned confidence" in after.options[0].reason


def test_successes_raise_the_confidence(ledger: Ledger, diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    d = diagnosis(RootCause.NETWORK)
    planner = RecoveryPlanner(ledger=ledger, events=None, min_auto_confidence=0.7)
    base = planner.plan_recovery(d, task).options[0].confidence
    record(ledger, d.fingerprint, RETRY_FROM_FAILURE, AttemptOutcome.SUCCEEDED, 5)

    best = planner.plan_recovery(d, task).options[0]

    assert best.type.value == "retry"
    assert best.confidence > base
    assert "5 success(es) and 0 failure(s)" in best.reason


def test_learning_is_per_fingerprint_and_ignores_dry_runs(
    ledger: Ledger, diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    d = diagnosis(RootCause.NETWORK)
    record(ledger, "another-fingerprint", RETRY_FROM_FAILURE, AttemptOutcome.FAILED, 5)
    ledger.begin_attempt(
        RecoveryAttempt(
            incident_fingerprint=d.fingerprint,
            idempotency_key="dry",
            action=RETRY_FROM_FAILURE,
            dry_run=True,
            outcome=AttemptOutcome.DRY_RUN,
        )
    )
    plan = RecoveryPlanner(ledger=ledger, events=None, min_auto_confidence=0.7).plan_recovery(d, task)
    assert plan.options[0].type.value == "retry"
    assert "learned" not in plan.options[0].reason
