"""The policy: switches (global, per DAG, per call), approval threshold, dry run, circuit breaker."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from qubinode_recovery_provider.config import ConfigError
from qubinode_recovery_provider.models import (
    AttemptOutcome,
    RecoveryActionType,
    RecoveryAttempt,
    RecoveryOption,
    Risk,
    utcnow,
)
from qubinode_recovery_provider.recovery import CircuitBreaker, RecoveryPolicy, dag_auto_recovery
from qubinode_recovery_provider.recovery.policy import counts_for_breaker, parse_switch
from qubinode_recovery_provider.store import Ledger


class FakeParam:
    """Like Airflow's ``Param``: the value sits in ``.value``."""

    def __init__(self, value: Any) -> None:
        self.value = value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("on", True),
        ("OFF", False),
        ("0", False),
        ("yes", True),
        ("maybe", None),
        (1, None),
        (None, None),
    ],
)
def test_parse_switch(value: Any, expected: bool | None) -> None:
    assert parse_switch(value) is expected


@pytest.mark.parametrize(
    ("params", "tags", "expected"),
    [
        (None, None, None),
        ({"qubinode_auto_recovery": False}, None, False),
        ({"qubinode_auto_recovery": FakeParam("off")}, None, False),
        ({"qubinode_auto_recovery": "on"}, ["qubinode_auto_recovery:off"], True),
        ({}, ["infra", "qubinode_auto_recovery:off"], False),
        ({}, ["qubinode_auto_recovery:on"], True),
        ({}, ["qubinode_auto_recovery"], True),
        ({"other": False}, ["unrelated:off"], None),
    ],
)
def test_dag_setting_from_param_or_tag(params: Any, tags: Any, expected: bool | None) -> None:
    assert dag_auto_recovery(params, tags) is expected


def test_each_level_can_only_switch_automatic_recovery_off() -> None:
    on, off = RecoveryPolicy(), RecoveryPolicy(auto_recovery_enabled=False)

    assert on.auto_recovery_allowed() == (True, "automatic recovery is enabled")
    assert not on.auto_recovery_allowed(dag_setting=False)[0]
    assert "for this DAG" in on.auto_recovery_allowed(dag_setting=False)[1]
    assert not on.auto_recovery_allowed(call_setting=False)[0]
    assert not off.auto_recovery_allowed(dag_setting=True, call_setting=True)[0]
    assert "globally" in off.auto_recovery_allowed()[1]


def test_dry_run_from_config_or_call() -> None:
    assert not RecoveryPolicy().is_dry_run()
    assert RecoveryPolicy().is_dry_run(True)
    assert RecoveryPolicy(dry_run=True).is_dry_run(False)


def option(**fields: Any) -> RecoveryOption:
    data: dict[str, Any] = {
        "type": RecoveryActionType.RETRY,
        "title": "t",
        "priority": 1,
        "confidence": 0.9,
        "risk": Risk.LOW,
        "automatic": True,
        "action": "retry-from-failure",
    }
    data.update(fields)
    return RecoveryOption(**data)


def test_approval_threshold() -> None:
    policy = RecoveryPolicy(approval_risk_threshold=Risk.LOW, min_auto_confidence=0.7)

    assert policy.approval_reasons(option()) == []
    assert policy.approval_reasons(option(risk=Risk.MEDIUM)) == [
        "risk medium is above the approval threshold low"
    ]
    assert policy.approval_reasons(option(confidence=0.5)) == [
        "confidence 0.50 is below min_auto_confidence 0.70"
    ]
    assert policy.approval_reasons(option(automatic=False)) == [
        "the plan does not mark this option as automatic"
    ]
    assert RecoveryPolicy(approval_risk_threshold=Risk.HIGH).approval_reasons(option(risk=Risk.HIGH)) == []


def test_from_config(set_option: Callable[[str, str], None]) -> None:
    assert RecoveryPolicy.from_config() == RecoveryPolicy()
    set_option("auto_recovery_enabled", "false")
    set_option("dry_run", "true")
    set_option("approval_risk_threshold", "medium")
    set_option("min_auto_confidence", "0.8")
    set_option("breaker_max_attempts", "5")
    set_option("breaker_max_host_attempts", "7")
    set_option("breaker_window_minutes", "15")

    policy = RecoveryPolicy.from_config()

    assert policy == RecoveryPolicy(False, True, Risk.MEDIUM, 0.8, 5, 7, timedelta(minutes=15))
    assert RecoveryPolicy.from_config(dry_run=False).dry_run is False
    set_option("approval_risk_threshold", "extreme")
    with pytest.raises(ConfigError, match="approval_risk_threshold"):
        RecoveryPolicy.from_config()


def attempt(
    key: str, *, fingerprint: str = "fp", host: str | None = "kvm-1", **fields: Any
) -> RecoveryAttempt:
    return RecoveryAttempt(
        incident_fingerprint=fingerprint,
        idempotency_key=key,
        action="retry-from-failure",
        host=host,
        **fields,
    )


def test_only_attempts_that_acted_count() -> None:
    assert counts_for_breaker(attempt("a"))
    assert counts_for_breaker(attempt("b", outcome=AttemptOutcome.FAILED))
    assert not counts_for_breaker(attempt("c", dry_run=True))
    assert not counts_for_breaker(attempt("d", outcome=AttemptOutcome.BLOCKED))
    assert not counts_for_breaker(attempt("e", outcome=AttemptOutcome.SKIPPED))
    assert not counts_for_breaker(attempt("f").model_copy(update={"action": "escalate"}))


def test_breaker_per_fingerprint_and_per_host(ledger: Ledger) -> None:
    breaker = CircuitBreaker(RecoveryPolicy(breaker_max_attempts=2, breaker_max_host_attempts=3))
    for key, fingerprint in [("k1", "fp"), ("k2", "fp"), ("k3", "other")]:
        assert ledger.begin_attempt(attempt(key, fingerprint=fingerprint))
    ledger.begin_attempt(attempt("dry", dry_run=True, outcome=AttemptOutcome.DRY_RUN))

    by_fingerprint = breaker.check(ledger, "fp", None)
    assert by_fingerprint.open
    assert "2 automatic attempt(s) for this fingerprint in the last 60 min (limit 2)" in by_fingerprint.reason
    assert not breaker.check(ledger, "third", None).open
    by_host = breaker.check(ledger, "third", "kvm-1")
    assert by_host.open
    assert "host kvm-1" in by_host.reason
    assert not breaker.check(ledger, "third", "kvm-2").open


def test_breaker_window_forgets_old_attempts(ledger: Ledger) -> None:
    breaker = CircuitBreaker(RecoveryPolicy(breaker_max_attempts=1, breaker_window=timedelta(minutes=10)))
    ledger.begin_attempt(attempt("old", started_at=utcnow() - timedelta(minutes=11)))
    assert not breaker.check(ledger, "fp").open
    ledger.begin_attempt(attempt("new"))
    assert breaker.check(ledger, "fp").open


def test_breaker_after_insert_lets_only_the_first_n_through(ledger: Ledger) -> None:
    """Two executors that both passed the first check: the one inserted later is stopped."""
    breaker = CircuitBreaker(RecoveryPolicy(breaker_max_attempts=2))
    for key in ("k1", "k2", "k3"):
        ledger.begin_attempt(attempt(key))
    assert not breaker.check(ledger, "fp", own_key="k2").open
    late = breaker.check(ledger, "fp", own_key="k3")
    assert late.open
    assert "2 automatic attempt(s)" in late.reason
