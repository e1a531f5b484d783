"""Carry out one option of a recovery plan, exactly once, within the policy.

The executor applies the rules of :func:`~qubinode_recovery_provider.recovery.decision.decide` and maps
the decision onto the attempt: an option without an action is handed to a person (escalated); an
unknown or ill-typed action is refused and a disabled one is not run (``blocked``); the global switch
turned off gives ``skipped``; a dry run records what would run (``dry_run``); an approved option runs;
the circuit breaker escalates instead of running; an option that needs approval asks the approval
callback and otherwise waits for it (``blocked``), unless this call's or the DAG's switch turned
automatic recovery off (``skipped``). Then the attempt is claimed in the ledger under its idempotency
key (fingerprint, run, action, arguments): of any number of executors racing on the same plan, only the
one whose claim succeeds runs the action. The outcome is written back, which also feeds outcome
learning, and ``recovery_executed`` is emitted.

Every decision is returned as a :class:`~qubinode_recovery_provider.models.RecoveryAttempt` and, when the
ledger is reachable, recorded in it. Nothing here raises because an action or a subscriber failed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.models import (
    AttemptOutcome,
    IncidentState,
    RecoveryAttempt,
    RecoveryOption,
    RecoveryPlan,
    utcnow,
)
from qubinode_recovery_provider.recovery.actions import (
    RETRY_FROM_FAILURE,
    ActionError,
    ActionRegistry,
    ActionResult,
)
from qubinode_recovery_provider.recovery.decision import (
    APPROVAL,
    ESCALATE,
    RecoveryDecision,
    ResolvedAction,
    Rule,
    decide,
)
from qubinode_recovery_provider.recovery.events import RECOVERY_EXECUTED, EventBus, default_bus
from qubinode_recovery_provider.recovery.policy import CircuitBreaker, RecoveryPolicy

if TYPE_CHECKING:
    from pydantic import BaseModel


log = logging.getLogger(__name__)

ApprovalCallback = Callable[[RecoveryPlan, RecoveryOption, list[str]], bool]


def args_hash(args: dict[str, Any]) -> str:
    """A stable hash of action arguments (canonical JSON)."""
    canonical = json.dumps(args, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def idempotency_key(fingerprint: str, run_id: str | None, action: str, args: dict[str, Any]) -> str:
    """The key under which an attempt is claimed: one per fingerprint, run, action and arguments.

    :param fingerprint: the failure's fingerprint
    :param run_id: the failed run (``-`` when unknown)
    :param action: the registered action name
    :param args: the validated arguments, as JSON-ready data
    """
    return f"{fingerprint}|{run_id or '-'}|{action}|{args_hash(args)}"


@dataclass(frozen=True)
class CallSettings:
    """What the caller asks for this one execution.

    :param option_index: the option to carry out; default the recommended one
    :param host: the libvirt host the failure happened on (circuit breaker per host)
    :param dag_auto_recovery: the DAG's own switch (param or tag ``qubinode_auto_recovery``)
    :param auto_recovery: this call's switch
    :param dry_run: force a dry run
    :param approved: a person approved this option (for example in the Airflow UI)
    """

    option_index: int | None = None
    host: str | None = None
    dag_auto_recovery: bool | None = None
    auto_recovery: bool | None = None
    dry_run: bool | None = None
    approved: bool = False


class RecoveryExecutor:
    """Execute recovery options against a ledger, a registry of actions and a policy.

    :param ledger: the ledger (claims, outcomes, escalation outbox)
    :param registry: the allowlisted actions
    :param policy: the rules; default from the configuration
    :param approval_callback: ``callback(plan, option, reasons) -> bool`` asked when approval is needed
    :param events: bus for ``recovery_executed`` (default: the process bus; None to disable)
    """

    def __init__(
        self,
        ledger: Any,
        registry: ActionRegistry,
        policy: RecoveryPolicy | None = None,
        *,
        approval_callback: ApprovalCallback | None = None,
        events: EventBus | bool | None = True,
    ) -> None:
        self.ledger = ledger
        self.registry = registry
        self.policy = policy if policy is not None else RecoveryPolicy.from_config()
        self.breaker = CircuitBreaker(self.policy)
        self.approval_callback = approval_callback
        self._events = default_bus() if events is True else (events or None)

    def execute(
        self, plan: RecoveryPlan, settings: CallSettings | None = None, **kwargs: Any
    ) -> RecoveryAttempt:
        """Carry out one option of ``plan`` (the recommended one by default).

        :param plan: the plan
        :param settings: the call's settings; or pass them as keyword arguments
        :returns: the attempt: SUCCEEDED/FAILED when the action ran, DRY_RUN, SKIPPED (switched off,
            or another executor claimed it), BLOCKED (awaiting approval, refused, or escalated)
        :raises IndexError: when the plan has no option ``option_index``
        """
        call = settings or CallSettings(**kwargs)
        decision = decide(
            plan,
            self.registry,
            self.policy,
            ledger=self.ledger,
            run_auto_recovery=call.auto_recovery,
            dag_auto_recovery=call.dag_auto_recovery,
            dry_run=call.dry_run,
            host=call.host,
            option_index=call.option_index,
            approved=call.approved,
        )
        option = plan.options[decision.option_index] if decision.option_index is not None else None
        attempt = self._act(plan, option, decision, call)
        if isinstance(self._events, EventBus):
            self._events.emit(RECOVERY_EXECUTED, plan=plan, option=option, attempt=attempt)
        return attempt

    # --- decisions -------------------------------------------------------------------------------

    def _act(
        self,
        plan: RecoveryPlan,
        option: RecoveryOption | None,
        decision: RecoveryDecision,
        call: CallSettings,
    ) -> RecoveryAttempt:
        """Map the decision onto the attempt (see the module docstring)."""
        if option is None or decision.rule is Rule.BY_A_PERSON:
            return self._escalate(plan, call.host, _person_reason(option))
        if decision.rule is Rule.BREAKER_OPEN:
            return self._escalate(plan, call.host, decision.breaker)
        assert option.action is not None
        if decision.action is None:  # refused: unknown action or invalid arguments
            key = idempotency_key(plan.fingerprint, plan.run_id, option.action, option.action_args)
            detail = f"not run: {decision.error}"
            return self._note(plan, option, call.host, key, "refused", AttemptOutcome.BLOCKED, detail)
        key = idempotency_key(
            plan.fingerprint, plan.run_id, option.action, decision.action.args.model_dump(mode="json")
        )
        if decision.route == ESCALATE:  # the action is disabled, or the global switch is off
            outcome = AttemptOutcome.SKIPPED if decision.rule is Rule.SWITCHED_OFF else AttemptOutcome.BLOCKED
            detail = f"not run: {decision.reasons[0]}"
            return self._note(plan, option, call.host, key, "disabled", outcome, detail)
        if decision.dry_run:
            return self._dry_run(plan, option, call.host, key, decision)
        if decision.route == APPROVAL:
            return self._gate(plan, option, decision, key, call)
        return self._run(plan, option, decision.action, key, call)

    def _gate(
        self,
        plan: RecoveryPlan,
        option: RecoveryOption,
        decision: RecoveryDecision,
        key: str,
        call: CallSettings,
    ) -> RecoveryAttempt:
        """An option that needs a person: not at all when a switch is off, else after the callback's yes."""
        assert decision.action is not None
        if decision.switched_off:
            detail = f"not run: {decision.switched_off}"
            return self._note(plan, option, call.host, key, "disabled", AttemptOutcome.SKIPPED, detail)
        if not self._ask(plan, option, decision.approval):
            detail = "awaiting approval: " + "; ".join(decision.approval)
            return self._note(plan, option, call.host, key, "approval", AttemptOutcome.BLOCKED, detail)
        return self._run(plan, option, decision.action, key, call)

    def _ask(self, plan: RecoveryPlan, option: RecoveryOption, reasons: list[str]) -> bool:
        if self.approval_callback is None:
            return False
        try:
            return self.approval_callback(plan, option, list(reasons)) is True
        except Exception:
            log.exception("approval callback failed; treating as not approved")
            return False

    # --- running ---------------------------------------------------------------------------------

    def _run(
        self,
        plan: RecoveryPlan,
        option: RecoveryOption,
        action: ResolvedAction,
        key: str,
        call: CallSettings,
    ) -> RecoveryAttempt:
        spec, args = action.spec, action.args
        attempt = _attempt(plan, spec.name, args.model_dump(mode="json"), key, call.host)
        try:
            claimed = self.ledger.begin_attempt(attempt)
        except Exception as exc:
            detail = f"not run: the ledger cannot guarantee a single run ({_one_line(exc)})"
            return attempt.model_copy(update={"outcome": AttemptOutcome.BLOCKED, "detail": detail})
        if not claimed:
            detail = f"not run: attempt {key} was already claimed by another executor"
            return attempt.model_copy(update={"outcome": AttemptOutcome.SKIPPED, "detail": detail})
        stop = (
            ""
            if call.approved
            else self.breaker.reason_to_stop(self.ledger, plan.fingerprint, call.host, own_key=key)
        )
        if stop:
            self._finish(key, AttemptOutcome.BLOCKED, f"not run: {stop}")
            return self._escalate(plan, call.host, stop)
        self._safely(self.ledger.set_incident_state, plan.fingerprint, IncidentState.RECOVERING)
        result = self._invoke(spec.name, args)
        outcome = AttemptOutcome.SUCCEEDED if result.succeeded else AttemptOutcome.FAILED
        if result.succeeded and not result.changed:
            outcome = AttemptOutcome.SKIPPED  # already handled: nothing was left to do
        self._finish(key, outcome, result.detail)
        return attempt.model_copy(
            update={"outcome": outcome, "detail": result.detail, "finished_at": utcnow()}
        )

    def _invoke(self, name: str, args: BaseModel) -> ActionResult:
        result = self._run_action(name, args)
        then_retry = getattr(args, "then_retry", None)
        if not result.succeeded or then_retry is None:
            return result
        retried = self._run_action(RETRY_FROM_FAILURE, then_retry)
        return ActionResult(
            retried.succeeded,
            f"{result.detail}; then {RETRY_FROM_FAILURE}: {retried.detail}",
            changed=result.changed or retried.changed,
        )

    def _run_action(self, name: str, args: BaseModel) -> ActionResult:
        try:
            return self.registry.run(name, args)
        except ActionError as exc:
            return ActionResult(False, str(exc))

    def _dry_run(
        self,
        plan: RecoveryPlan,
        option: RecoveryOption,
        host: str | None,
        key: str,
        decision: RecoveryDecision,
    ) -> RecoveryAttempt:
        args = json.dumps(option.action_args, sort_keys=True, default=str)
        parts = [f"dry run: would run {option.action} {args}"]
        waits = [*decision.approval, *([decision.switched_off] if decision.switched_off else [])]
        if waits:
            parts.append("after approval (" + "; ".join(waits) + ")")
        if decision.breaker:
            parts.append(f"but would escalate instead: {decision.breaker}")
        return self._note(plan, option, host, key, "dry-run", AttemptOutcome.DRY_RUN, "; ".join(parts))

    # --- records ---------------------------------------------------------------------------------

    def _note(
        self,
        plan: RecoveryPlan,
        option: RecoveryOption,
        host: str | None,
        key: str,
        suffix: str,
        outcome: AttemptOutcome,
        detail: str,
    ) -> RecoveryAttempt:
        """Record a decision that ran nothing, under its own key (so a later real run is not blocked)."""
        attempt = _attempt(plan, option.action or "", option.action_args, f"{key}|{suffix}", host)
        attempt = attempt.model_copy(
            update={"outcome": outcome, "detail": detail, "dry_run": outcome is AttemptOutcome.DRY_RUN}
        )
        self._claim_and_finish(attempt)
        return attempt.model_copy(update={"finished_at": utcnow()})

    def _claim_and_finish(self, attempt: RecoveryAttempt) -> bool:
        try:
            claimed: bool = self.ledger.begin_attempt(attempt)
        except Exception as exc:
            log.warning("ledger unavailable, decision not recorded: %s", _one_line(exc))
            return True
        if claimed:
            self._finish(attempt.idempotency_key, attempt.outcome, attempt.detail)
        return claimed

    def _finish(self, key: str, outcome: AttemptOutcome, detail: str) -> None:
        self._safely(self.ledger.finish_attempt, key, outcome, detail[:2000])

    def _safely(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            log.warning("ledger write %s failed: %s", getattr(fn, "__name__", fn), _one_line(exc))
            return None

    def _escalate(self, plan: RecoveryPlan, host: str | None, reason: str) -> RecoveryAttempt:
        """Hand the incident to a person: once per fingerprint and run, through the escalation outbox."""
        # escalation renders the plan with recovery's modules: imported here, so either package loads first
        from qubinode_recovery_provider.escalation.outbox import queue_escalation

        return queue_escalation(self.ledger, plan, reason, host=host).attempt


def _attempt(
    plan: RecoveryPlan, action: str, args: dict[str, Any], key: str, host: str | None
) -> RecoveryAttempt:
    return RecoveryAttempt(
        incident_fingerprint=plan.fingerprint,
        idempotency_key=key,
        action=action,
        action_args=args,
        host=host,
    )


def _person_reason(option: RecoveryOption | None) -> str:
    if option is None:
        return "the plan has no option"
    return f"{option.type.value} needs a person: {option.title}"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def execute(
    plan: RecoveryPlan,
    ledger: Any,
    policy: RecoveryPolicy | None = None,
    registry: ActionRegistry | None = None,
    *,
    approval_callback: ApprovalCallback | None = None,
    events: EventBus | bool | None = True,
    **settings: Any,
) -> RecoveryAttempt:
    """Execute ``plan`` once (see :class:`RecoveryExecutor`); ``settings`` are :class:`CallSettings`.

    :param plan: the plan
    :param ledger: the ledger
    :param policy: the rules; default from the configuration
    :param registry: the actions; default: the built-in registry without implementations, in which
        every action is disabled (so nothing runs unless the caller provides them)
    """
    if registry is None:
        from qubinode_recovery_provider.recovery.actions import build_default_registry

        registry = build_default_registry()
    executor = RecoveryExecutor(ledger, registry, policy, approval_callback=approval_callback, events=events)
    return executor.execute(plan, CallSettings(**settings))
