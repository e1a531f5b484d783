"""The options a person carries out: MANUAL_FIX (checks and fixes for the cause), SKIP and ESCALATE."""

from __future__ import annotations

from collections.abc import Iterable

from qubinode_recovery_provider.models import Risk, RootCause, Severity
from qubinode_recovery_provider.output_limits import CHECK_STEP, FIX_STEP
from qubinode_recovery_provider.recovery import playbooks
from qubinode_recovery_provider.recovery.options.base import (
    PATTERN_ID_RE,
    A,
    Candidate,
    PlanContext,
    in_run,
    make_option,
)
from qubinode_recovery_provider.recovery.safety import is_safe_text, is_service_name

MAX_MANUAL_STEPS = 14


def manual_fix_candidates(ctx: PlanContext) -> list[Candidate]:
    pb = ctx.playbook
    option = make_option(
        ctx,
        type=A.MANUAL_FIX,
        title=f"Fix the {ctx.diagnosis.root_cause.value.replace('_', ' ')} problem by hand",
        confidence=pb.manual_confidence * ctx.scale,
        risk=Risk.LOW,
        expected_duration_seconds=pb.manual_minutes * 60,
        steps=_manual_steps(ctx),
        prerequisites=[f"Shell access to {_host(ctx)} as a user allowed to change it."],
        rollback_steps=["Revert the change if the task still fails the same way, and escalate."],
        success_criteria=[
            "The check commands no longer show the problem.",
            f"A retry of {ctx.label()} succeeds.",
        ],
    )
    return [Candidate(option, intended_auto=False, note="gives a person the checks and fixes for this cause")]


def _host(ctx: PlanContext) -> str:
    host = ctx.task.host
    return f"`{host}`" if host and is_service_name(host) else "the host that ran the task"


def _manual_steps(ctx: PlanContext) -> list[str]:
    """Checks then fixes, each ranked from the decisive cause outwards: its pattern's commands, its
    tool's, then the category's generic ones (which the presenters usually leave out,
    :mod:`~qubinode_recovery_provider.output_limits`); its pattern's advice, then the category's."""
    decisive = ctx.diagnosis.decisive_pattern
    checks = [cmd for cmd in ctx.diagnosis.diagnostic_commands if is_safe_text(cmd)]
    if decisive is not None and PATTERN_ID_RE.match(decisive):
        checks.extend(playbooks.TOOL_DIAGNOSTICS.get(playbooks.tool_of(decisive), ()))
    checks.extend(ctx.playbook.diagnostics)
    fixes = [hint for hint in ctx.diagnosis.recommended_actions if is_safe_text(hint)]
    fixes.extend(ctx.playbook.fixes)
    steps = [f"{CHECK_STEP}`{_fill(cmd, ctx)}`" for cmd in _unique(checks)]
    steps += [f"{FIX_STEP}{_fill(fix, ctx)}" for fix in _unique(fixes)]
    return steps[:MAX_MANUAL_STEPS]


def _fill(template: str, ctx: PlanContext) -> str:
    """Put the (validated) unit name into a ``<unit>`` slot."""
    service = ctx.wait_target
    if service and service not in playbooks.RESOURCES and is_service_name(service):
        return template.replace("<unit>", service)
    return template


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item.strip(), None)
    return [item for item in seen if item]


def skip_candidates(ctx: PlanContext) -> list[Candidate]:
    option = make_option(
        ctx,
        type=A.SKIP,
        title="Skip the failed task",
        confidence=ctx.playbook.skip_confidence * ctx.scale,
        risk=Risk.MEDIUM,
        expected_duration_seconds=300,
        steps=[
            f"Mark {ctx.label()}{in_run(ctx)} as success in the Airflow UI (Mark state > success).",
            "Note in the incident why it was skipped.",
        ],
        prerequisites=[
            "Downstream tasks do not need the task's result, or it exists already "
            "(for example the VM is already there and correct)."
        ],
        rollback_steps=[f"Clear {ctx.label()} to run it after all."],
        success_criteria=["Downstream tasks succeed without the skipped task."],
    )
    return [Candidate(option, intended_auto=False, note="lets the rest of the run go on without this task")]


def escalate_candidates(ctx: PlanContext) -> list[Candidate]:
    diagnosis = ctx.diagnosis
    confidence = 0.5 + 0.4 * (1.0 - diagnosis.confidence)
    if diagnosis.root_cause is RootCause.UNKNOWN:
        confidence = max(confidence, 0.8)
    owner = f" of DAG `{ctx.dag}`" if ctx.dag else ""
    steps = [
        "Open an incident with this plan and the diagnosis (a GitHub issue when github_repository "
        "is set, a Markdown report otherwise).",
        f"Assign it to the owner{owner}.",
    ]
    if diagnosis.severity is Severity.CRITICAL:
        steps.append("Severity is critical: page the on-call person.")
    option = make_option(
        ctx,
        type=A.ESCALATE,
        title="Escalate to a person",
        confidence=confidence,
        risk=Risk.NONE,
        expected_duration_seconds=3600,
        steps=steps,
        success_criteria=["An owner acknowledges the incident."],
    )
    return [Candidate(option, intended_auto=False, note="hands the incident to a person with this plan")]
