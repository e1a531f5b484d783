"""The recovery DAG's decision and the executor follow one rule: the same plans, policies and switches
through :func:`decide` and through :class:`RecoveryExecutor` (real planner, registry, policy and SQLite
ledger) take the same route.

What the executor did is read as a route: it ran the action or recorded a dry run (``auto``); it ran
nothing, and runs the action once a person approved it (``approval``); it escalated, or ran nothing even
after an approval (``escalate``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from recovery_workers import record_automatic_attempts

from qubinode_recovery_provider.models import (
    AttemptOutcome,
    Diagnosis,
    RecoveryPlan,
    Risk,
    RootCause,
    TaskConfig,
)
from qubinode_recovery_provider.recovery import (
    ActionResult,
    CallSettings,
    RecoveryExecutor,
    RecoveryPlanner,
    RecoveryPolicy,
    build_default_registry,
)
from qubinode_recovery_provider.recovery.decision import APPROVAL, AUTO, ESCALATE, decide
from qubinode_recovery_provider.recovery.policy import ESCALATE_ACTION
from qubinode_recovery_provider.store import Ledger

MakeDiagnosis = Callable[..., Diagnosis]


def retry_ok(args: Any) -> ActionResult:
    return ActionResult(True, "cleared")


@dataclass(frozen=True)
class Case:
    """One plan through both paths.

    :param cause: the diagnosis's root cause
    :param route: the route both must take
    :param policy: the policy
    :param call: the switches (``auto_recovery`` is the run's switch of the decision)
    :param retry: the deployment implements ``retry-from-failure``
    :param task: overrides of the failed task
    :param tamper: changes to the recommended option (a plan edited after planning)
    :param earlier_attempts: automatic attempts of the fingerprint already in the ledger
    """

    cause: RootCause
    route: str
    policy: RecoveryPolicy = field(default_factory=RecoveryPolicy)
    call: CallSettings = field(default_factory=CallSettings)
    retry: bool = True
    task: dict[str, Any] = field(default_factory=dict)
    tamper: dict[str, Any] = field(default_factory=dict)
    earlier_attempts: int = 0


OFF = RecoveryPolicy(auto_recovery_enabled=False)
CASES = {
    "within the policy": Case(RootCause.NETWORK, AUTO),
    "carried out by a person": Case(RootCause.CREDENTIAL, ESCALATE),
    "retry without the failed run": Case(RootCause.NETWORK, ESCALATE, task={"run_id": None}),
    "action not implemented here": Case(RootCause.NETWORK, ESCALATE, retry=False),
    "unknown action": Case(RootCause.NETWORK, ESCALATE, tamper={"action": "shell"}),
    "invalid arguments": Case(RootCause.NETWORK, ESCALATE, tamper={"dag_id": "build_vm; touch /tmp/x"}),
    "global switch off": Case(RootCause.NETWORK, ESCALATE, policy=OFF),
    "global switch off, dry run": Case(
        RootCause.NETWORK, ESCALATE, policy=OFF, call=CallSettings(dry_run=True)
    ),
    "global switch off, action not implemented": Case(RootCause.NETWORK, ESCALATE, policy=OFF, retry=False),
    "run switch off": Case(RootCause.NETWORK, APPROVAL, call=CallSettings(auto_recovery=False)),
    "DAG switch off": Case(RootCause.NETWORK, APPROVAL, call=CallSettings(dag_auto_recovery=False)),
    "risk above the threshold": Case(
        RootCause.NETWORK, APPROVAL, policy=RecoveryPolicy(approval_risk_threshold=Risk.NONE)
    ),
    "confidence below the minimum": Case(
        RootCause.NETWORK, APPROVAL, policy=RecoveryPolicy(min_auto_confidence=0.99)
    ),
    "dry run": Case(RootCause.NETWORK, AUTO, call=CallSettings(dry_run=True)),
    "dry run, run switch off": Case(
        RootCause.NETWORK, AUTO, call=CallSettings(dry_run=True, auto_recovery=False)
    ),
    "dry run, breaker open": Case(
        RootCause.NETWORK, AUTO, call=CallSettings(dry_run=True), earlier_attempts=3
    ),
    "breaker open": Case(RootCause.NETWORK, ESCALATE, earlier_attempts=3),
    "breaker open, DAG switch off": Case(
        RootCause.NETWORK, ESCALATE, call=CallSettings(dag_auto_recovery=False), earlier_attempts=3
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_decide_and_the_executor_take_the_same_route(
    name: str, tmp_path: Path, diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    case = CASES[name]
    registry = build_default_registry(retry=retry_ok if case.retry else None)
    plan = _plan(case, diagnosis, task)
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool", auto_flush_interval=0) as ledger:
        ledger.migrate()
        record_automatic_attempts(ledger, plan.fingerprint, case.earlier_attempts)
        decision = decide(
            plan,
            registry,
            case.policy,
            ledger=ledger,
            run_auto_recovery=case.call.auto_recovery,
            dag_auto_recovery=case.call.dag_auto_recovery,
            dry_run=case.call.dry_run,
        )
        route, dry_run = _executor_route(
            RecoveryExecutor(ledger, registry, case.policy, events=None), plan, case
        )

    assert decision.route == case.route, decision.summary
    assert route == decision.route, decision.summary
    if route == AUTO:
        assert dry_run is decision.dry_run is bool(case.call.dry_run)


def _plan(case: Case, diagnosis: MakeDiagnosis, task: TaskConfig) -> RecoveryPlan:
    planning = build_default_registry(retry=retry_ok)  # plans as a deployment that can retry
    planner = RecoveryPlanner(actions=planning, events=None, min_auto_confidence=0.7)
    plan = planner.plan_recovery(diagnosis(case.cause), task.model_copy(update=case.task))
    if case.tamper:
        option = plan.options[plan.recommended_index or 0]
        if "action" in case.tamper:
            option.action = case.tamper["action"]
        else:
            option.action_args.update(case.tamper)
    return plan


def _executor_route(executor: RecoveryExecutor, plan: RecoveryPlan, case: Case) -> tuple[str, bool]:
    first = executor.execute(plan, case.call)
    if first.action == ESCALATE_ACTION:
        return ESCALATE, first.dry_run
    if first.outcome in (AttemptOutcome.SUCCEEDED, AttemptOutcome.DRY_RUN):
        return AUTO, first.outcome is AttemptOutcome.DRY_RUN
    approved = executor.execute(plan, replace(case.call, approved=True))
    return (APPROVAL if approved.outcome is AttemptOutcome.SUCCEEDED else ESCALATE), False
