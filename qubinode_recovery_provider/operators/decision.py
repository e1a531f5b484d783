"""Which way the recovery DAG goes after planning: run the plan's action unattended, ask a person in the
Airflow UI first, or escalate. Plain Python (no Airflow import), so the rules can be read and tested on
their own; :class:`~qubinode_recovery_provider.operators.RecoveryDecisionOperator` applies them.

The rules, in order:

1. **escalate** when the recommended option is carried out by a person (no action), its action is not
   registered, disabled or its arguments do not validate, or the global switch
   (``auto_recovery_enabled``) is off -- nothing may run then, not even after an approval;
2. **auto** for a dry run (nothing runs; the attempt records what would);
3. **escalate** when the circuit breaker is open for the fingerprint or the host;
4. **approval** when the policy asks for one (risk above ``approval_risk_threshold``, confidence below
   ``min_auto_confidence``, option not marked automatic), or when this run (``enable_auto_recovery``)
   or the failed DAG (param or tag ``qubinode_auto_recovery``) turned automatic recovery off: those
   switches stop *unattended* recovery, a person may still approve it;
5. **auto** otherwise.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import Diagnosis, RecoveryOption, RecoveryPlan
    from qubinode_recovery_provider.recovery.actions import ActionRegistry
    from qubinode_recovery_provider.recovery.policy import RecoveryPolicy

AUTO = "auto"
APPROVAL = "approval"
ESCALATE = "escalate"


@dataclass(frozen=True)
class RecoveryDecision:
    """The route and why.

    :param route: ``auto``, ``approval`` or ``escalate``
    :param reasons: one line each: why approval is needed, or why nothing may run
    :param dry_run: the execution will be a dry run
    :param option_index: the option the route is about (the recommended one)
    """

    route: str
    reasons: list[str] = field(default_factory=list)
    dry_run: bool = False
    option_index: int | None = None

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


def decide(
    plan: RecoveryPlan,
    registry: ActionRegistry,
    policy: RecoveryPolicy,
    *,
    ledger: Any | None = None,
    run_auto_recovery: bool | None = None,
    dag_auto_recovery: bool | None = None,
    dry_run: bool | None = None,
    host: str | None = None,
) -> RecoveryDecision:
    """Decide the route for the recommended option of ``plan`` (see the module docstring).

    :param plan: the plan
    :param registry: the allowlisted actions
    :param policy: the configured policy
    :param ledger: read by the circuit breaker; None skips that check (the executor checks again)
    :param run_auto_recovery: this recovery run's switch (``enable_auto_recovery``)
    :param dag_auto_recovery: the failed DAG's switch
    :param dry_run: this run's dry-run switch (a configured dry run cannot be turned off)
    :param host: the host the failure happened on (circuit breaker per host)
    """
    from qubinode_recovery_provider.recovery.actions import ActionError
    from qubinode_recovery_provider.recovery.policy import CircuitBreaker

    index = plan.recommended_index
    option = plan.recommended
    is_dry = policy.is_dry_run(dry_run)
    if option is None:
        return RecoveryDecision(ESCALATE, ["the plan has no option"], is_dry, index)
    if option.action is None:
        return RecoveryDecision(ESCALATE, [_by_a_person(plan, option)], is_dry, index)
    try:
        spec = registry.get(option.action)
        args = registry.validate(option.action, option.action_args)
    except ActionError as exc:
        return RecoveryDecision(ESCALATE, [f"action {option.action} cannot run: {exc}"], is_dry, index)
    if not spec.enabled:
        why = f"action {option.action} is disabled in this deployment"
        return RecoveryDecision(ESCALATE, [why], is_dry, index)
    allowed, why = policy.auto_recovery_allowed()
    if not allowed:
        return RecoveryDecision(ESCALATE, [why], is_dry, index)
    if is_dry:
        return RecoveryDecision(AUTO, ["the action is recorded, not run"], True, index)
    if ledger is not None:
        stop = _breaker(CircuitBreaker(policy), ledger, plan.fingerprint, host)
        if stop:
            return RecoveryDecision(ESCALATE, [stop], False, index)
    reasons = policy.approval_reasons(option, spec.risk_of(args))
    if run_auto_recovery is False:
        reasons.append("automatic recovery is off for this run (enable_auto_recovery)")
    if dag_auto_recovery is False:
        reasons.append("the failed DAG turned automatic recovery off (qubinode_auto_recovery)")
    if reasons:
        return RecoveryDecision(APPROVAL, reasons, False, index)
    return RecoveryDecision(
        AUTO,
        [f"{option.action}: risk {option.risk.value}, confidence {option.confidence:.2f}, within the policy"],
        False,
        index,
    )


def _by_a_person(plan: RecoveryPlan, option: RecoveryOption) -> str:
    """Why an option without an action escalates, saying what would let a retry run."""
    from qubinode_recovery_provider.models import RecoveryActionType

    if option.type is RecoveryActionType.RETRY and not plan.run_id:
        return (
            "a retry needs the failed run to resume: it runs automatically only when failed_run_id "
            "(and failed_task_id) name it; otherwise re-run the task in the Airflow UI"
        )
    return f"the recommended option is carried out by a person: {option.type.value} - {option.title}"


def _breaker(breaker: Any, ledger: Any, fingerprint: str, host: str | None) -> str:
    try:
        verdict = breaker.check(ledger, fingerprint, host)
    except Exception as exc:
        return f"circuit breaker cannot read the ledger ({type(exc).__name__})"
    return verdict.reason if verdict.open else ""


def approval_markdown(
    plan: RecoveryPlan, decision: RecoveryDecision, diagnosis: Diagnosis | None = None
) -> str:
    """The body of the approval request: what would run (a dry run of the option), why a person must
    approve, its risk, rollback and success criteria, then the whole plan.

    :param plan: the plan
    :param decision: the decision (its reasons)
    :param diagnosis: adds the verdict
    """
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
        plan_to_markdown(plan, diagnosis=diagnosis, level=3),
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


__all__ = ["APPROVAL", "AUTO", "ESCALATE", "RecoveryDecision", "approval_markdown", "decide"]
