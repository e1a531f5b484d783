"""Queueing an escalation once per fingerprint and failed run (real SQLite ledger)."""

from __future__ import annotations

from pathlib import Path

import pytest

from qubinode_recovery_provider.escalation import escalation_key, escalation_text, queue_escalation
from qubinode_recovery_provider.models import (
    AttemptOutcome,
    Diagnosis,
    FailureEvent,
    RecoveryPlan,
    RootCause,
)
from qubinode_recovery_provider.store import Ledger

RUN_ID = "manual__2025-01-01T00:00:00+00:00"


@pytest.fixture
def ledger(tmp_path: Path):
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool") as opened:
        opened.migrate()
        yield opened


def plan(run_id: str | None = RUN_ID) -> RecoveryPlan:
    return RecoveryPlan(
        fingerprint="fp-credential",
        root_cause=RootCause.CREDENTIAL,
        dag_id="build_vm",
        task_id="fetch",
        run_id=run_id,
    )


def test_the_key_existing_ledgers_hold_does_not_change() -> None:
    assert escalation_key(plan()) == f"fp-credential|{RUN_ID}|escalate"
    assert escalation_key(plan(run_id=None)) == "fp-credential|-|escalate"


def test_the_first_caller_queues_it_the_others_find_it_queued(ledger: Ledger) -> None:
    diagnosis = Diagnosis(fingerprint="fp-credential", root_cause=RootCause.CREDENTIAL, confidence=0.9)
    ledger.record_failure(FailureEvent(dag_id="build_vm", task_id="fetch", run_id=RUN_ID), diagnosis)
    planned = plan()  # one plan: its body names its creation time (two plans may straddle a second)
    first = queue_escalation(ledger, planned, "no safe automatic option", host="kvm-01")
    again = queue_escalation(ledger, plan(), "verification failed")

    assert (first.first, again.first) == (True, False)
    assert first.outbox_id == 1
    assert again.outbox_id is None
    assert first.attempt.detail == "escalated (outbox 1): no safe automatic option"
    assert again.attempt.detail == "already escalated for this run: verification failed"
    (stored,) = ledger.attempts(fingerprint="fp-credential", automatic_only=False)
    assert (stored.idempotency_key, stored.action, stored.host) == (
        escalation_key(plan()),
        "escalate",
        "kvm-01",
    )
    assert (stored.outcome, stored.detail) == (AttemptOutcome.BLOCKED, first.attempt.detail)
    (entry,) = ledger.pending_escalations()
    title, body = escalation_text(planned, "no safe automatic option")
    assert (entry["title"], entry["body"]) == (title, body)
    assert title == "[qubinode-recovery] credential failure in build_vm.fetch"
    assert entry["labels"] == ["qubinode-recovery", "root-cause:credential"]
    assert ledger.get_incident("fp-credential").state.value == "escalated"


def test_another_run_of_the_same_failure_is_escalated_again(ledger: Ledger) -> None:
    assert queue_escalation(ledger, plan(), "first run").first
    assert queue_escalation(ledger, plan(run_id="manual__2"), "second run").first
    assert len(ledger.pending_escalations()) == 2


def test_an_unreachable_ledger_still_escalates(tmp_path: Path) -> None:
    (tmp_path / "not_a_dir").write_text("")
    broken = Ledger(f"sqlite:///{tmp_path / 'not_a_dir' / 'ledger.db'}", tmp_path / "spool", timeout=0.2)
    queued = queue_escalation(broken, plan(), "breaker open")
    assert queued.first is True  # better a duplicate escalation than none
    assert queued.attempt.detail.startswith("escalated (outbox ")
