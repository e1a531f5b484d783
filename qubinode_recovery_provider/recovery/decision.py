"""Which way a recovery goes for one option of a plan: run it unattended, ask a person first, or escalate.

Plain Python (no Airflow import), and the one place these rules exist:
:class:`~qubinode_recovery_provider.operators.RecoveryDecisionOperator` branches on :func:`decide`, and
:class:`~qubinode_recovery_provider.recovery.executor.RecoveryExecutor` calls it before it claims an
attempt and maps the decision onto the attempt's outcome.

The rules, in order (the first that applies decides):

1. **escalate** when the option is carried out by a person (no action, or the plan has no option), its
   action is not registered or its arguments do not validate, the action is disabled in this deployment,
   or the global switch (``auto_recovery_enabled``) is off -- nothing may run then, not even after an
   approval;
2. **auto** for a dry run (nothing runs; the attempt records what would);
3. **auto** when a person approved the option (``approved``, the executor after an approval): neither the
   circuit breaker nor the switches of rule 5 hold it back;
4. **escalate** when the circuit breaker is open for the fingerprint or the host (or cannot read the
   ledger);
5. **approval** when the policy asks for one (risk above ``approval_risk_threshold``, confidence below
   ``min_auto_confidence``, option not marked automatic), or when this run (``enable_auto_recovery``)
   or the failed DAG (param or tag ``qubinode_auto_recovery``) turned automatic recovery off: those
   switches stop *unattended* recovery, a person may still approve it;
6. **auto** otherwise.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.models import RecoveryActionType
from qubinode_recovery_provider.recovery.actions import ActionError
from qubinode_recovery_provider.recovery.policy import CircuitBreaker

if TYPE_CHECKING:
    from collections.abc import Callable

    from pydantic import BaseModel

    from qubinode_recovery_provider.models import Diagnosis, RecoveryOption, RecoveryPlan
    from qubinode_recovery_provider.recovery.actions import ActionRegistry, ActionSpec
    from qubinode_recovery_provider.recovery.policy import AttemptHistory, RecoveryPolicy

AUTO = "auto"
APPROVAL = "approval"
ESCALATE = "escalate"

RUN_SWITCH_OFF = "automatic recovery is off for this run (enable_auto_recovery)"
DAG_SWITCH_OFF = "the failed DAG turned automatic recovery off (qubinode_auto_recovery)"


class Rule(enum.StrEnum):
    """The rule that decided (see the module docstring)."""

    NO_OPTION = "no_option"
    BY_A_PERSON = "by_a_person"
    REFUSED = "refused"
    ACTION_DISABLED = "action_disabled"
    SWITCHED_OFF = "switched_off"
    DRY_RUN = "dry_run"
    APPROVED = "approved"
    BREAKER_OPEN = "breaker_open"
    NEEDS_APPROVAL = "needs_approval"
    WITHIN_POLICY = "within_policy"


@dataclass(frozen=True)
class ResolvedAction:
    """The registered action of an option and its validated arguments.

    :param spec: the registry's entry
    :param args: the option's arguments, validated by the action's model
    """

    spec: ActionSpec
    args: BaseModel


@dataclass(frozen=True)
class RecoveryDecision:
    """The route and why.

    :param route: ``auto``, ``approval`` or ``escalate``
    :param reasons: one line each: why approval is needed, or why nothing may run
    :param dry_run: the execution will be a dry run
    :param option_index: the option the route is about (the recommended one unless asked for another)
    :param rule: the rule that decided
    :param approval: why the policy wants a person's approval for the option (also for a dry run: what a
        real run would wait for); empty after an approval
    :param switched_off: the switch (this run's or call's, or the DAG's) that stops unattended recovery,
        in the policy's words; empty when none is off or after an approval
    :param breaker: the circuit breaker's reason to stop (also for a dry run: why a real run would
        escalate); empty when it is closed, was not read (no ledger) or after an approval
    :param error: why the action was refused (unknown action, invalid arguments)
    :param action: the registered action and its validated arguments; None when the option has no
        runnable action
    """

    route: str
    reasons: list[str] = field(default_factory=list)
    dry_run: bool = False
    option_index: int | None = None
    rule: Rule = Rule.WITHIN_POLICY
    approval: list[str] = field(default_factory=list)
    switched_off: str = ""
    breaker: str = ""
    error: str = ""
    action: ResolvedAction | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "route": self.route,
            "reasons": list(self.reasons),
            "dry_run": self.dry_run,
            "option_index": self.option_index,
        }

    @property
    def summary(self) -> str:
        why = "; ".join(self.reasons)
        head = {AUTO: "run automatically", APPROVAL: "needs approval", ESCALATE: "escalate only"}[self.route]
        if self.dry_run and self.route == AUTO:
            head = "dry run"
        return f"{head}: {why}" if why else head


def choose_option(plan: RecoveryPlan, index: int | None) -> tuple[int | None, RecoveryOption | None]:
    """The option ``index`` of ``plan`` (default the recommended one) and its index.

    :raises IndexError: when the plan has no option ``index``
    """
    if index is None:
        return (plan.recommended_index if plan.recommended is not None else None), plan.recommended
    if not 0 <= index < len(plan.options):
        raise IndexError(f"plan has {len(plan.options)} option(s); no option {index}")
    return index, plan.options[index]


def decide(
    plan: RecoveryPlan,
    registry: ActionRegistry,
    policy: RecoveryPolicy,
    *,
    ledger: AttemptHistory | None = None,
    run_auto_recovery: bool | None = None,
    dag_auto_recovery: bool | None = None,
    dry_run: bool | None = None,
    host: str | None = None,
    option_index: int | None = None,
    approved: bool = False,
) -> RecoveryDecision:
    """Decide the route for one option of ``plan`` (see the module docstring).

    :param plan: the plan
    :param registry: the allowlisted actions
    :param policy: the configured policy
    :param ledger: read by the circuit breaker; None skips that check
    :param run_auto_recovery: this recovery run's (or call's) switch (``enable_auto_recovery``)
    :param dag_auto_recovery: the failed DAG's switch
    :param dry_run: this run's dry-run switch (a configured dry run cannot be turned off)
    :param host: the host the failure happened on (circuit breaker per host)
    :param option_index: the option to decide on; default the recommended one
    :param approved: a person approved this option
    :raises IndexError: when the plan has no option ``option_index``
    """
    index, option = choose_option(plan, option_index)
    case = _Case(
        plan=plan,
        index=index,
        option=option,
        registry=registry,
        policy=policy,
        ledger=ledger,
        host=host,
        is_dry=policy.is_dry_run(dry_run),
        approved=approved,
        run_switch=run_auto_recovery,
        dag_switch=dag_auto_recovery,
    )
    for rule in _RULES:
        decision = rule(case)
        if decision is not None:
            return decision
    return case.decide(AUTO, Rule.WITHIN_POLICY, [case.within_policy()])


@dataclass
class _Case:
    """One option under decision, with what the rules read (each read at most once)."""

    plan: RecoveryPlan
    index: int | None
    option: RecoveryOption | None
    registry: ActionRegistry
    policy: RecoveryPolicy
    ledger: AttemptHistory | None
    host: str | None
    is_dry: bool
    approved: bool
    run_switch: bool | None
    dag_switch: bool | None

    @cached_property
    def resolved(self) -> ResolvedAction | ActionError:
        assert self.option is not None
        name = self.option.action or ""
        try:
            return ResolvedAction(
                self.registry.get(name), self.registry.validate(name, self.option.action_args)
            )
        except ActionError as exc:
            return exc

    @property
    def action(self) -> ResolvedAction:
        assert isinstance(self.resolved, ResolvedAction)
        return self.resolved

    @cached_property
    def approval(self) -> list[str]:
        if self.approved:
            return []
        assert self.option is not None
        return self.policy.approval_reasons(self.option, self.action.spec.risk_of(self.action.args))

    @cached_property
    def switched_off(self) -> str:
        allowed, why = self.policy.auto_recovery_allowed(
            dag_setting=self.dag_switch, call_setting=self.run_switch
        )
        return "" if allowed or self.approved else why

    @cached_property
    def breaker(self) -> str:
        if self.ledger is None or self.approved:
            return ""
        return CircuitBreaker(self.policy).reason_to_stop(self.ledger, self.plan.fingerprint, self.host)

    def switch_reasons(self) -> list[str]:
        """The switches that stop unattended recovery, in the words of the recovery run."""
        if self.approved:
            return []
        return [
            why
            for off, why in ((self.run_switch, RUN_SWITCH_OFF), (self.dag_switch, DAG_SWITCH_OFF))
            if off is False
        ]

    def within_policy(self) -> str:
        assert self.option is not None
        option = self.option
        risk = f"risk {option.risk.value}, confidence {option.confidence:.2f}"
        return f"{option.action}: {risk}, within the policy"

    def decide(self, route: str, rule: Rule, reasons: list[str], **facts: Any) -> RecoveryDecision:
        runnable = self.option is not None and self.option.action is not None
        action = self.resolved if runnable and isinstance(self.resolved, ResolvedAction) else None
        return RecoveryDecision(route, reasons, self.is_dry, self.index, rule, action=action, **facts)


def _no_option(case: _Case) -> RecoveryDecision | None:
    if case.option is None:
        return case.decide(ESCALATE, Rule.NO_OPTION, ["the plan has no option"])
    return None


def _by_a_person(case: _Case) -> RecoveryDecision | None:
    option = case.option
    if option is None or option.action is not None:
        return None
    if option.type is RecoveryActionType.RETRY and not case.plan.run_id:
        why = (
            "a retry needs the failed run to resume: it runs automatically only when failed_run_id "
            "(and failed_task_id) name it; otherwise re-run the task in the Airflow UI"
        )
    else:
        which = (
            "the recommended option" if case.index == case.plan.recommended_index else f"option {case.index}"
        )
        why = f"{which} is carried out by a person: {option.type.value} - {option.title}"
    return case.decide(ESCALATE, Rule.BY_A_PERSON, [why])


def _refused(case: _Case) -> RecoveryDecision | None:
    if not isinstance(case.resolved, ActionError):
        return None
    assert case.option is not None
    error = str(case.resolved)
    return case.decide(
        ESCALATE, Rule.REFUSED, [f"action {case.option.action} cannot run: {error}"], error=error
    )


def _action_disabled(case: _Case) -> RecoveryDecision | None:
    if case.action.spec.enabled:
        return None
    why = f"action {case.action.spec.name} is disabled in this deployment"
    return case.decide(ESCALATE, Rule.ACTION_DISABLED, [why])


def _switched_off(case: _Case) -> RecoveryDecision | None:
    allowed, why = case.policy.auto_recovery_allowed()
    return None if allowed else case.decide(ESCALATE, Rule.SWITCHED_OFF, [why])


def _dry_run(case: _Case) -> RecoveryDecision | None:
    if not case.is_dry:
        return None
    return case.decide(
        AUTO,
        Rule.DRY_RUN,
        ["the action is recorded, not run"],
        approval=case.approval,
        switched_off=case.switched_off,
        breaker=case.breaker,
    )


def _approved(case: _Case) -> RecoveryDecision | None:
    return case.decide(AUTO, Rule.APPROVED, ["a person approved it"]) if case.approved else None


def _breaker_open(case: _Case) -> RecoveryDecision | None:
    if not case.breaker:
        return None
    return case.decide(ESCALATE, Rule.BREAKER_OPEN, [case.breaker], breaker=case.breaker)


def _needs_approval(case: _Case) -> RecoveryDecision | None:
    reasons = [*case.approval, *case.switch_reasons()]
    if not reasons:
        return None
    return case.decide(
        APPROVAL, Rule.NEEDS_APPROVAL, reasons, approval=case.approval, switched_off=case.switched_off
    )


_RULES: tuple[Callable[[_Case], RecoveryDecision | None], ...] = (
    _no_option,
    _by_a_person,
    _refused,
    _action_disabled,
    _switched_off,
    _dry_run,
    _approved,
    _breaker_open,
    _needs_approval,
)


def approval_markdown(
    plan: RecoveryPlan, decision: RecoveryDecision, diagnosis: Diagnosis | None = None
) -> str:
    """The body of the approval request: what would run (a dry run of the option), why a person must
    approve, its risk, rollback and success criteria, then the whole plan.

    :param plan: the plan
    :param decision: the decision (its reasons)
    :param diagnosis: adds the verdict
    """
    from qubinode_recovery_provider.output_limits import OutputLimits, ledger_hint
    from qubinode_recovery_provider.recovery.render import plan_to_markdown

    option = plan.options[decision.option_index] if decision.option_index is not None else plan.recommended
    lines = ["## Recovery needs your approval", ""]
    where = ".".join(part for part in (plan.dag_id, plan.task_id) if part)
    if where:
        run = f" in run `{plan.run_id}`" if plan.run_id else ""
        lines += [f"**Failed:** `{where}`{run}", ""]
    if diagnosis is not None:
        lines += [
            f"**Diagnosis:** {diagnosis.root_cause.value} (confidence {diagnosis.confidence:.2f}) - "
            f"{' '.join(diagnosis.summary.split()) or 'no summary'}",
            "",
        ]
    lines += ["**Why a person must approve:**", "", *(f"- {reason}" for reason in decision.reasons), ""]
    if option is not None:
        lines += _dry_run_section(option)
    lines += [
        "**Approve** runs exactly this action once (idempotent, recorded in the ledger). "
        "**Reject** runs nothing and escalates the incident to a person.",
        "",
        "---",
        "",
        plan_to_markdown(
            plan,
            diagnosis=diagnosis,
            level=3,
            limits=OutputLimits.configured(),
            more_hint=ledger_hint(plan.fingerprint),
        ),
    ]
    return "\n".join(lines).rstrip() + "\n"


def _dry_run_section(option: RecoveryOption) -> list[str]:
    args = json.dumps(option.action_args, indent=2, sort_keys=True)
    lines = [
        f"### Dry run: {option.title}",
        "",
        f"Would run `{option.action}` with:",
        "",
        "```json",
        args,
        "```",
        "",
        f"- **Risk:** {option.risk.value}",
        f"- **Confidence:** {option.confidence:.2f}",
        f"- **Expected duration:** {max(1, round(option.expected_duration_seconds / 60))} min",
        "",
    ]
    if option.rollback_steps:
        lines += ["**Rollback**", "", *(f"- {' '.join(step.split())}" for step in option.rollback_steps), ""]
    if option.success_criteria:
        lines += [
            "**Success criteria**",
            "",
            *(f"- {' '.join(c.split())}" for c in option.success_criteria),
            "",
        ]
    return lines


__all__ = [
    "APPROVAL",
    "AUTO",
    "ESCALATE",
    "RecoveryDecision",
    "ResolvedAction",
    "Rule",
    "approval_markdown",
    "choose_option",
    "decide",
]
