"""DiagnosisRetryPolicy reads the ledger's record of earlier retries of the same failure (issue 14,
part 3): a "not sure" timeout becomes a RETRY when earlier retries recovered, a FAIL when they failed,
and stays with the task's own retries when the ledger has no record (or no file: none is created)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from airflow.sdk.definitions.retry_policy import RetryAction
from policy_helpers import FakeTI, write_attempt_log

from qubinode_recovery_provider.models import AttemptOutcome, RecoveryAttempt, utcnow
from qubinode_recovery_provider.policies import DiagnosisRetryPolicy
from qubinode_recovery_provider.recovery.actions import RETRY_FROM_FAILURE
from qubinode_recovery_provider.store import Ledger
from qubinode_recovery_provider.store import schema as t
from qubinode_recovery_provider.store.url import resolve_ledger_url

TIMEOUT = "error: timed out waiting for the condition"
EXC = Exception("Bash command failed. The command returned a non-zero exit code 1.")


def _decide(tmp_path: Path, try_number: int = 1):  # type: ignore[no-untyped-def]
    ti = FakeTI(try_number=try_number)
    write_attempt_log(tmp_path / "logs", ti, ["Waiting for the API", TIMEOUT])
    policy = DiagnosisRetryPolicy()
    return policy.evaluate(EXC, ti.try_number, 3, {"ti": ti, "run_id": ti.run_id}), ti


def _history(fingerprint: str, outcomes: list[AttemptOutcome]) -> None:
    with Ledger(resolve_ledger_url(), auto_flush_interval=0) as ledger:
        ledger.migrate()
        for n, outcome in enumerate(outcomes):
            key = f"earlier-{n}"
            args = {"dag_id": "build_vm", "run_id": f"scheduled__{n}", "task_ids": ["create_vm"]}
            attempt = RecoveryAttempt(
                incident_fingerprint=fingerprint,
                idempotency_key=key,
                action=RETRY_FROM_FAILURE,
                action_args=args,
            )
            assert ledger.begin_attempt(attempt)
            ledger.finish_attempt(key, outcome)
        with ledger.engine.begin() as conn:  # they finished an hour ago: their runs are settled
            conn.execute(sa.update(t.attempts).values(finished_at=utcnow() - timedelta(hours=1)))


def test_without_a_ledger_the_timeout_is_left_to_the_tasks_retries(tmp_path: Path) -> None:
    decision, ti = _decide(tmp_path)
    assert decision.action is RetryAction.DEFAULT
    assert ti.pushed[DiagnosisRetryPolicy.XCOM_KEY]["retryable"] is None
    assert not (tmp_path / "state").exists() or not list((tmp_path / "state").rglob("*.db"))


def test_earlier_retries_that_recovered_make_it_a_retry_with_the_evidence(tmp_path: Path) -> None:
    _, ti = _decide(tmp_path)
    fingerprint = ti.pushed[DiagnosisRetryPolicy.XCOM_KEY]["fingerprint"]
    _history(fingerprint, [AttemptOutcome.SUCCEEDED] * 3)
    decision, ti = _decide(tmp_path)
    assert decision.action is RetryAction.RETRY
    assert "3 of 3 earlier retries of this failure succeeded (ledger)" in decision.reason
    pushed = ti.pushed[DiagnosisRetryPolicy.XCOM_KEY]
    assert pushed["retryable"] is True
    assert pushed["retry_evidence"] == "3 of 3 earlier retries of this failure succeeded (ledger)"


def test_earlier_retries_that_failed_make_it_fail_fast(tmp_path: Path) -> None:
    _, ti = _decide(tmp_path)
    fingerprint = ti.pushed[DiagnosisRetryPolicy.XCOM_KEY]["fingerprint"]
    _history(fingerprint, [AttemptOutcome.FAILED] * 2)
    decision, ti = _decide(tmp_path)
    assert ti.pushed[DiagnosisRetryPolicy.XCOM_KEY]["retryable"] is False
    assert "0 of 2 earlier retries of this failure succeeded (ledger)" in decision.reason
    # FAIL when the diagnosis is confident enough, else the task's retries; never a RETRY
    assert decision.action in (RetryAction.FAIL, RetryAction.DEFAULT)
