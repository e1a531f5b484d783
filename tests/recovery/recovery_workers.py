"""Builders and child-process workers of the recovery tests (imported by the tests and by the
``forkserver`` children, so it must stay importable without pytest)."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

from qubinode_recovery_provider.models import (
    AttemptOutcome,
    Diagnosis,
    PatternMatch,
    RecoveryAttempt,
    RecoveryPlan,
    Risk,
    RootCause,
    Severity,
)
from qubinode_recovery_provider.recovery import (
    RETRY_FROM_FAILURE,
    ActionRegistry,
    ActionResult,
    RecoveryExecutor,
    RecoveryPolicy,
    RetryFromFailureArgs,
)
from qubinode_recovery_provider.store import Ledger

#: per root cause: (pattern id, retryable, affected services, severity), as the shipped packs say
DEFAULTS: dict[RootCause, tuple[str | None, bool | None, list[str], Severity]] = {
    RootCause.VIRTUALIZATION: ("libvirt_010", False, ["libvirtd", "qemu"], Severity.HIGH),
    RootCause.NETWORK: ("network_001", True, ["networking"], Severity.MEDIUM),
    RootCause.STORAGE: ("storage_001", False, ["storage"], Severity.HIGH),
    RootCause.SERVICE_DEPENDENCY: ("libvirt_001", True, ["libvirtd"], Severity.CRITICAL),
    RootCause.CREDENTIAL: ("ssh_001", False, ["ssh", "sshd"], Severity.HIGH),
    RootCause.RESOURCE_EXHAUSTION: ("resource_001", False, ["kernel"], Severity.HIGH),
    RootCause.CONFIGURATION: ("ansible_003", False, ["ansible"], Severity.MEDIUM),
    RootCause.TIMEOUT: ("timeout_001", True, [], Severity.MEDIUM),
    RootCause.STATE_MISMATCH: ("libvirt_020", False, ["libvirtd"], Severity.MEDIUM),
    RootCause.UNKNOWN: (None, None, [], Severity.MEDIUM),
}


def make_diagnosis(root_cause: RootCause | str = RootCause.NETWORK, **fields: Any) -> Diagnosis:
    """A diagnosis as the analyzer would make it for ``root_cause``; ``fields`` override."""
    cause = RootCause(root_cause)
    pattern_id, retryable, services, severity = DEFAULTS[cause]
    data: dict[str, Any] = {
        "root_cause": cause,
        "summary": f"a {cause.value} failure",
        "confidence": 0.3 if cause is RootCause.UNKNOWN else 0.9,
        "severity": severity,
        "retryable": retryable,
        "affected_services": services,
        "fingerprint": f"fp-{cause.value}",
        "matched_patterns": [
            PatternMatch(pattern_id=pattern_id, category=cause, line_number=1, evidence="the decisive line")
        ]
        if pattern_id
        else [],
    }
    data.update(fields)
    return Diagnosis(**data)


def record_automatic_attempts(ledger: Ledger, fingerprint: str, count: int) -> None:
    """``count`` automatic attempts of ``fingerprint`` that ran and succeeded (what the breaker counts)."""
    for n in range(count):
        ledger.begin_attempt(
            RecoveryAttempt(
                incident_fingerprint=fingerprint,
                idempotency_key=f"earlier-{n}",
                action=RETRY_FROM_FAILURE,
                outcome=AttemptOutcome.SUCCEEDED,
            )
        )


def forkserver_context() -> Any:
    """Clean child processes (no inherited engines, pools or locks)."""
    return multiprocessing.get_context("forkserver")


def append_line(path: str, text: str) -> None:
    """Append one line atomically (O_APPEND), so concurrent writers never interleave."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def race_to_execute(
    url: str, spool_dir: str, start: Any, plan_json: str, actions_file: str, name: str, results: Any
) -> None:
    """One executor, in its own process, carrying out ``plan`` the moment ``start`` is set."""

    def retry(args: RetryFromFailureArgs) -> ActionResult:
        append_line(actions_file, f"{name} {args.dag_id} {args.run_id} {','.join(args.task_ids)}")
        time.sleep(0.3)  # a slow action: the other executors arrive while it runs
        return ActionResult(True, f"cleared by {name}")

    registry = ActionRegistry()
    registry.register(RETRY_FROM_FAILURE, retry, RetryFromFailureArgs, Risk.LOW)
    ledger = Ledger(url, Path(spool_dir), timeout=30, auto_flush_interval=0)
    executor = RecoveryExecutor(ledger, registry, RecoveryPolicy(), events=None)
    plan = RecoveryPlan.model_validate_json(plan_json)
    start.wait(60)
    attempt = executor.execute(plan)
    results.put((name, attempt.outcome.value, attempt.detail))
    ledger.close()
