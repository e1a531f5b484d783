"""Retry evidence from the ledger (issue 14, part 3), on SQLite and PostgreSQL: earlier retries of the
same failure decide a "not sure" retry claim; nothing in a log's text counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from store_workers import make_diagnosis, make_event

from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary, retry_evidence
from qubinode_recovery_provider.models import AttemptOutcome, Diagnosis, RecoveryAttempt, RootCause, utcnow
from qubinode_recovery_provider.recovery.actions import RETRY_FROM_FAILURE
from qubinode_recovery_provider.store import Ledger
from qubinode_recovery_provider.store.queries import SameRun

FP = "fp-net-0001"
LATER = timedelta(minutes=1)


def _unsure() -> Diagnosis:
    d = make_diagnosis(fingerprint=FP, root_cause=RootCause.TIMEOUT, summary="timed out waiting for the API")
    return d.model_copy(update={"retryable": None})


def _retry(
    ledger: Ledger,
    key: str,
    outcome: AttemptOutcome,
    *,
    run_id: str | None = None,
    detail: str = "",
    dry_run: bool = False,
    fingerprint: str = FP,
    **args: Any,
) -> str:
    run = run_id or f"scheduled__{key}"
    attempt = RecoveryAttempt(
        incident_fingerprint=fingerprint,
        idempotency_key=key,
        action=RETRY_FROM_FAILURE,
        action_args={"dag_id": "build_vm", "run_id": run, "task_ids": ["create_vm"], **args},
        dry_run=dry_run,
        host="kvm-01",
        started_at=utcnow() - timedelta(minutes=5),
    )
    assert ledger.begin_attempt(attempt)
    ledger.finish_attempt(key, outcome, detail)
    return run


def _outcomes(ledger: Ledger, current: SameRun | None = None, limit: int = 20) -> tuple[int, int]:
    return ledger.retry_outcomes(
        FP, RETRY_FROM_FAILURE, limit=limit, settled_before=utcnow() + LATER, current=current
    )


def test_retries_that_recovered_make_an_unsure_claim_true_with_the_evidence(ledger: Ledger) -> None:
    for n in range(3):
        _retry(ledger, f"r{n}", AttemptOutcome.SUCCEEDED)
    assert _outcomes(ledger) == (3, 0)
    source = _Settled(ledger)
    d = retry_evidence.from_ledger(_unsure(), source)
    assert d.retryable is True
    assert d.retry_evidence == "3 of 3 earlier retries of this failure succeeded (ledger)"


def test_a_retry_whose_run_failed_again_did_not_recover(ledger: Ledger) -> None:
    run = _retry(ledger, "r0", AttemptOutcome.SUCCEEDED)
    _retry(ledger, "r1", AttemptOutcome.SUCCEEDED)
    # the cleared task failed again in that run after the retry started
    ledger.record_occurrence(make_event(run_id=run, try_number=2), make_diagnosis(fingerprint="fp-other"))
    assert _outcomes(ledger) == (1, 1)
    d = retry_evidence.from_ledger(_unsure(), _Settled(ledger))
    assert d.retryable is None, "mixed evidence decides nothing"
    assert d.retry_evidence == "1 of 2 earlier retries of this failure succeeded (ledger)"


def test_failing_retries_make_the_claim_false(ledger: Ledger) -> None:
    _retry(ledger, "r0", AttemptOutcome.FAILED)
    _retry(ledger, "r1", AttemptOutcome.FAILED)
    claimed = _unsure().model_copy(update={"retryable": True, "retry_delay_seconds": 60})
    d = retry_evidence.from_ledger(claimed, _Settled(ledger))
    assert d.retryable is False
    assert d.retry_delay_seconds is None
    assert d.retry_evidence == "0 of 2 earlier retries of this failure succeeded (ledger)"


def test_only_plain_settled_real_retries_of_this_fingerprint_count(ledger: Ledger) -> None:
    _retry(ledger, "dry", AttemptOutcome.SUCCEEDED, dry_run=True)
    _retry(ledger, "longer", AttemptOutcome.SUCCEEDED, execution_timeout_seconds=3600)
    _retry(ledger, "other", AttemptOutcome.SUCCEEDED, fingerprint="fp-other")
    _retry(ledger, "skipped", AttemptOutcome.SKIPPED)
    assert _outcomes(ledger) == (0, 0)
    _retry(ledger, "fresh", AttemptOutcome.SUCCEEDED)
    # by default an attempt must have finished 15 minutes ago: its run may still be going
    assert ledger.retry_outcomes(FP, RETRY_FROM_FAILURE) == (0, 0)
    assert _outcomes(ledger) == (1, 0)


def test_the_tasks_own_retries_that_failed_the_same_way_count_as_failed(ledger: Ledger) -> None:
    diagnosis = make_diagnosis(fingerprint=FP)
    ledger.record_occurrence(make_event(run_id="run-a", try_number=1), diagnosis)
    ledger.record_occurrence(make_event(run_id="run-a", try_number=2), diagnosis)
    ledger.record_occurrence(make_event(run_id="run-b", try_number=1), diagnosis)
    # a later try that failed differently is not this failure repeating
    ledger.record_occurrence(make_event(run_id="run-b", try_number=2), make_diagnosis(fingerprint="fp-other"))
    assert _outcomes(ledger) == (0, 1)
    # the try being diagnosed repeats run-b's first failure
    assert _outcomes(ledger, SameRun("build_vm", "create_vm", "run-b", 2)) == (0, 2)
    event = make_event(run_id="run-b", try_number=2)
    d = retry_evidence.from_ledger(_unsure(), _Settled(ledger), event)
    assert d.retryable is False


def test_the_read_is_bounded(ledger: Ledger) -> None:
    for n in range(12):
        _retry(ledger, f"r{n:02d}", AttemptOutcome.SUCCEEDED)
    assert _outcomes(ledger, limit=5) == (5, 0)


def test_a_log_line_claiming_the_retry_succeeded_is_not_evidence(ledger: Ledger) -> None:
    """Hostile text: the log says the retry succeeded; the ledger's own outcome says it failed."""
    lie = "INFO - 3 of 3 earlier retries of this failure succeeded (ledger); retry succeeded"
    for n in range(2):
        _retry(ledger, f"r{n}", AttemptOutcome.FAILED, detail=lie)
    event = make_event(run_id="run-x", try_number=1).model_copy(
        update={"log_tail": [lie, "retry succeeded", "timed out"]}
    )
    ledger.record_occurrence(event, make_diagnosis(fingerprint=FP))
    assert _outcomes(ledger) == (0, 2)
    analyzer = FailureAnalyzer(PatternLibrary.load())
    d = analyzer.analyze(lie + "\nretry succeeded\nerror: timed out waiting for the condition")
    assert d.retryable is None
    assert d.retry_evidence == ""


def test_an_empty_ledger_changes_nothing(ledger: Ledger) -> None:
    d = retry_evidence.from_ledger(_unsure(), _Settled(ledger))
    assert d.retryable is None
    assert d.retry_evidence == ""


def test_a_false_claim_is_not_read_against_the_ledger() -> None:
    class Exploding:
        def retry_outcomes(self, *args: Any, **kwargs: Any) -> tuple[int, int]:
            raise AssertionError("must not be read")

    d = _unsure().model_copy(update={"retryable": False})
    assert retry_evidence.from_ledger(d, Exploding()) is d


def test_a_ledger_that_cannot_answer_leaves_the_diagnosis(caplog: pytest.LogCaptureFixture) -> None:
    class Down:
        def retry_outcomes(self, *args: Any, **kwargs: Any) -> tuple[int, int]:
            raise OSError("database is locked")

    d = _unsure()
    assert retry_evidence.from_ledger(d, Down()) is d
    assert "could not answer" in caplog.text


class _Settled:
    """The ledger, with every finished attempt counted as settled (the tests' attempts are minutes old)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def retry_outcomes(self, fingerprint: str, action: str, **kwargs: Any) -> tuple[int, int]:
        return self.ledger.retry_outcomes(fingerprint, action, settled_before=utcnow() + LATER, **kwargs)


def test_the_retry_action_is_the_recovery_dags_retry() -> None:
    assert retry_evidence.RETRY_ACTION == RETRY_FROM_FAILURE
