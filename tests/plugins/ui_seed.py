"""Ledger contents for the UI tests and the bench: incidents with diagnoses, a plan, attempts, an
escalation issue and shadow findings, written through the ledger's own API."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from qubinode_recovery_provider.models import (
    AttemptOutcome,
    Diagnosis,
    FailureEvent,
    LLMOpinion,
    PatternMatch,
    RecoveryActionType,
    RecoveryAttempt,
    RecoveryOption,
    RecoveryPlan,
    RootCause,
    ShadowError,
    ShadowErrorType,
    utcnow,
)

if TYPE_CHECKING:
    from qubinode_recovery_provider.store import Ledger

NETWORK_LINE = "fatal: [web1]: UNREACHABLE! ssh: connect to host 10.0.0.7 port 22: Connection reset by peer"


def failure(
    dag_id: str, task_id: str, run_id: str, fingerprint: str, root_cause: RootCause
) -> tuple[FailureEvent, Diagnosis]:
    """A failed task and its diagnosis (one matched pattern, an LLM opinion)."""
    event = FailureEvent(
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
        try_number=1,
        host="kvm-01",
        occurred_at=utcnow(),
        exception_type="AirflowException",
        exception_text="Bash command failed. The command returned a non-zero exit code 4.",
        log_tail=[NETWORK_LINE],
    )
    diagnosis = Diagnosis(
        root_cause=root_cause,
        summary=f"{root_cause.value} failure of {task_id}",
        confidence=0.85,
        fingerprint=fingerprint,
        retryable=True,
        matched_patterns=[
            PatternMatch(pattern_id="NET001", category=root_cause, line_number=1, evidence=NETWORK_LINE)
        ],
        llm=LLMOpinion(
            model="stub-model",
            status="applied",
            root_cause=root_cause,
            confidence=0.8,
            reasoning="The SSH connection was reset before Ansible could log in.",
        ),
        dag_id=dag_id,
        task_id=task_id,
        run_id=run_id,
    )
    return event, diagnosis


def seed_incident(
    ledger: Ledger,
    dag_id: str = "build_vm",
    task_id: str = "ansible_play",
    run_id: str = "manual__1",
    fingerprint: str = "fp-net-0001",
    root_cause: RootCause = RootCause.NETWORK,
) -> int:
    """One incident with a plan, one attempt; returns its id."""
    event, diagnosis = failure(dag_id, task_id, run_id, fingerprint, root_cause)
    incident = ledger.record_failure(event, diagnosis)
    ledger.record_plan(
        RecoveryPlan(
            fingerprint=fingerprint,
            root_cause=root_cause,
            options=[
                RecoveryOption(
                    type=RecoveryActionType.RETRY,
                    title="Retry the task",
                    priority=1,
                    confidence=0.7,
                    automatic=True,
                    action="retry_task",
                ),
                RecoveryOption(
                    type=RecoveryActionType.MANUAL_FIX,
                    title="Check the host's SSH daemon",
                    priority=2,
                    confidence=0.5,
                    steps=["ssh kvm-01 systemctl status sshd"],
                ),
            ],
            recommended_index=0,
            dag_id=dag_id,
            task_id=task_id,
            run_id=run_id,
        )
    )
    key = f"{fingerprint}:retry_task:{run_id}"
    ledger.begin_attempt(
        RecoveryAttempt(incident_fingerprint=fingerprint, idempotency_key=key, action="retry_task")
    )
    ledger.finish_attempt(key, AttemptOutcome.SUCCEEDED, "task cleared")
    assert incident.id is not None
    return incident.id


def seed_finding(ledger: Ledger, dag_id: str = "build_vm", resource: str = "web1") -> int:
    """One open shadow finding; returns its id."""
    finding_id, _ = ledger.record_shadow_error(
        ShadowError(
            type=ShadowErrorType.VM_NOT_RUNNING,
            dag_id=dag_id,
            run_id="scheduled__2026-12-01",
            task_id="create_vm",
            resource=resource,
            confidence=0.9,
            evidence=[f"libvirt: domain {resource} is shut off", "the task succeeded"],
            detected_at=utcnow() - timedelta(minutes=5),
        )
    )
    return finding_id
