"""Carry out one option of a recovery plan, exactly once, within the policy.

The executor decides, in this order: an option without an action is handed to a person (escalated);
an unknown, disabled or ill-typed action is refused; the switches may turn automatic recovery off;
a dry run records what would run; the circuit breaker escalates instead of running; an option that needs
approval waits for it (or asks the approval callback). Then the attempt is claimed in the ledger under its
idempotency key (fingerprint, run, action, arguments): of any number of executors racing on the same plan,
only the one whose claim succeeds runs the action. The outcome is written back, which also feeds outcome
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
from qubinode_recovery_provider.recovery.events import RECOVERY_EXECUTED, EventBus, default_bus
from qubinode_recovery_provider.recovery.policy import ESCALATE_ACTION, CircuitBreaker, RecoveryPolicy
from qubinode_recovery_provider.recovery.render import plan_to_markdown
from qubinode_recovery_provider.recovery.safety import is_airflow_key

if TYPE_CHECKING:
    from pydantic import BaseModel

    from qubinode_recovery_provider.recovery.actions import ActionSpec

log = logging.getLogger(__name__)

ApprovalCallback = Callable[[RecoveryPlan, RecoveryOption, list[str]], bool]
ESCALATION_LABELS = ("qubinode-recovery",)


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
        """
        call = settings or CallSettings(**kwargs)
        option = _choose(plan, call.option_index)
        if option is None or option.action is None:
            attempt = self._escalate(plan, call.host, _person_reason(option))
        else:
            attempt = self._decide(plan, option, call)
        if isinstance(self._events, EventBus):
            self._events.emit(RECOVERY_EXECUTED, plan=plan, option=option, attempt=attempt)
        return attempt

    # --- decisions -------------------------------------------------------------------------------

    def _decide(self, plan: RecoveryPlan, option: RecoveryOption, call: CallSettings) -> RecoveryAttempt:
        assert option.action is not None
        try:
            spec = self.registry.get(option.action)
            args = self.registry.validate(option.action, option.action_args)
        except ActionError as exc:
            key = idempotency_key(plan.fingerprint, plan.run_id, option.action, option.action_args)
            return self._note(
                plan, option, call.host, key, "refused", AttemptOutcome.BLOCKED, f"not run: {exc}"
            )
        data = args.model_dump(mode="json")
        key = idempotency_key(plan.fingerprint, plan.run_id, option.action, data)
        allowed, why = self.policy.auto_recovery_allowed(
            dag_setting=call.dag_auto_recovery, call_setting=call.auto_recovery
        )
        if not allowed:
            return self._note(
                plan, option, call.host, key, "disabled", AttemptOutcome.SKIPPED, f"not run: {why}"
            )
        if not spec.enabled:
            detail = f"not run: action {spec.name} is disabled"
            return self._note(plan, option, call.host, key, "disabled", AttemptOutcome.BLOCKED, detail)
        approval = self.policy.approval_reasons(option, spec.risk_of(args))
        if self.policy.is_dry_run(call.dry_run):
            return self._dry_run(plan, option, call.host, key, approval)
        return self._gate(plan, option, spec, args, key, call, approval)

    def _gate(
        self,
        plan: RecoveryPlan,
        option: RecoveryOption,
        spec: ActionSpec,
        args: BaseModel,
        key: str,
        call: CallSettings,
        approval: list[str],
    ) -> RecoveryAttempt:
        if not call.approved:
            verdict = self._breaker(plan, call.host)
            if verdict:
                return self._escalate(plan, call.host, verdict)
        if approval and not call.approved and not self._ask(plan, option, approval):
            detail = "awaiting approval: " + "; ".join(approval)
            return self._note(plan, option, call.host, key, "approval", AttemptOutcome.BLOCKED, detail)
        return self._run(plan, option, spec, args, key, call)

    def _breaker(self, plan: RecoveryPlan, host: str | None, own_key: str | None = None) -> str:
        """The breaker's reason to stop, or ``""``; an unreadable ledger stops too."""
        try:
            verdict = self.breaker.check(self.ledger, plan.fingerprint, host, own_key=own_key)
        except Exception as exc:
            return f"circuit breaker cannot read the ledger ({_one_line(exc)})"
        return verdict.reason if verdict.open else ""

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
        spec: ActionSpec,
        args: BaseModel,
        key: str,
        call: CallSettings,
    ) -> RecoveryAttempt:
        attempt = _attempt(plan, spec.name, args.model_dump(mode="json"), key, call.host)
        try:
            claimed = self.ledger.begin_attempt(attempt)
        except Exception as exc:
            detail = f"not run: the ledger cannot guarantee a single run ({_one_line(exc)})"
            return attempt.model_copy(update={"outcome": AttemptOutcome.BLOCKED, "detail": detail})
        if not claimed:
            detail = f"not run: attempt {key} was already claimed by another executor"
            return attempt.model_copy(update={"outcome": AttemptOutcome.SKIPPED, "detail": detail})
        stop = "" if call.approved else self._breaker(plan, call.host, own_key=key)
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
        self, plan: RecoveryPlan, option: RecoveryOption, host: str | None, key: str, approval: list[str]
    ) -> RecoveryAttempt:
        assert option.action is not None
        args = json.dumps(option.action_args, sort_keys=True, default=str)
        parts = [f"dry run: would run {option.action} {args}"]
        if approval:
            parts.append("after approval (" + "; ".join(approval) + ")")
        stop = self._breaker(plan, host)
        if stop:
            parts.append(f"but would escalate instead: {stop}")
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
        key = f"{plan.fingerprint}|{plan.run_id or '-'}|{ESCALATE_ACTION}"
        attempt = _attempt(plan, ESCALATE_ACTION, {}, key, host).model_copy(
            update={"outcome": AttemptOutcome.BLOCKED, "detail": f"escalated: {reason}"}
        )
        if not self._claim_and_finish_escalation(attempt):
            detail = f"already escalated for this run: {reason}"
            return attempt.model_copy(update={"detail": detail, "finished_at": utcnow()})
        title, body = escalation_text(plan, reason)
        labels = [*ESCALATION_LABELS, f"root-cause:{plan.root_cause.value}"]
        outbox_id = self._safely(self.ledger.enqueue_escalation, plan.fingerprint, title, body, labels)
        self._safely(self.ledger.set_incident_state, plan.fingerprint, IncidentState.ESCALATED)
        detail = f"escalated (outbox {outbox_id or 'spooled'}): {reason}"
        self._finish(key, AttemptOutcome.BLOCKED, detail)
        return attempt.model_copy(update={"detail": detail, "finished_at": utcnow()})

    def _claim_and_finish_escalation(self, attempt: RecoveryAttempt) -> bool:
        try:
            return bool(self.ledger.begin_attempt(attempt))
        except Exception as exc:
            log.warning("ledger unavailable; escalating without de-duplication: %s", _one_line(exc))
            return True


def escalation_text(plan: RecoveryPlan, reason: str) -> tuple[str, str]:
    """Title and Markdown body of the escalation of ``plan``."""
    where = ".".join(part for part in (plan.dag_id, plan.task_id) if part and is_airflow_key(part))
    title = f"[qubinode-recovery] {plan.root_cause.value} failure" + (f" in {where}" if where else "")
    body = f"**Escalated:** {reason}\n\n" + plan_to_markdown(plan, level=2)
    return title, body


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


def _choose(plan: RecoveryPlan, index: int | None) -> RecoveryOption | None:
    if index is None:
        return plan.recommended
    if not 0 <= index < len(plan.options):
        raise IndexError(f"plan has {len(plan.options)} option(s); no option {index}")
    return plan.options[index]


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
