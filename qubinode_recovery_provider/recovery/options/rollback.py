"""The ROLLBACK option: a registered recovery handler, or the state of the latest checkpoint restored by
a person."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.models import Risk
from qubinode_recovery_provider.recovery.actions import RUN_HANDLER
from qubinode_recovery_provider.recovery.options.base import A, Candidate, PlanContext, in_run, make_option
from qubinode_recovery_provider.recovery.safety import is_airflow_key, is_safe_text

if TYPE_CHECKING:
    from qubinode_recovery_provider.recovery.handlers import RegisteredHandler


def rollback_candidates(ctx: PlanContext) -> list[Candidate]:
    if ctx.handler is not None:
        return [_rollback_handler(ctx, ctx.handler)]
    if ctx.checkpoint is not None:
        return [_rollback_checkpoint(ctx, ctx.checkpoint)]
    return []


def _rollback_handler(ctx: PlanContext, handler: RegisteredHandler) -> Candidate:
    args = {"handler": handler.name, "dag_id": handler.dag_id, "task_id": ctx.task_id, "run_id": ctx.run}
    action = RUN_HANDLER if RUN_HANDLER in ctx.actions else None
    steps = [
        f"Run the recovery handler `{handler.name}` registered for "
        f"`{handler.dag_id}.{handler.task_id or '*'}`"
        + (f": {handler.description}" if is_safe_text(handler.description) else ".")
    ]
    if ctx.checkpoint is not None:
        steps.append("The handler receives the latest checkpoint recorded for the task.")
    steps.append(f"Then clear {ctx.label()}{in_run(ctx)} so it runs again from a clean state.")
    option = make_option(
        ctx,
        type=A.ROLLBACK,
        title=f"Roll back with handler {handler.name}",
        confidence=0.8 * ctx.scale,
        risk=handler.risk,
        expected_duration_seconds=handler.expected_duration_seconds,
        automatic=action is not None,
        action=action,
        action_args=args if action else {},
        steps=steps,
        prerequisites=[f"Handler `{handler.name}` is registered in the process that executes the plan."],
        rollback_steps=[f"Re-run {ctx.label()} to recreate what the handler removed."],
        success_criteria=["The handler reports success.", "Nothing the failed task created is left behind."],
    )
    return Candidate(option, intended_auto=True, note=f"undoes the failed task's work with `{handler.name}`")


def _rollback_checkpoint(ctx: PlanContext, checkpoint: dict[str, Any]) -> Candidate:
    keys = _checkpoint_keys(checkpoint)
    option = make_option(
        ctx,
        type=A.ROLLBACK,
        title="Restore the state of the latest checkpoint",
        confidence=0.5 * ctx.scale,
        risk=Risk.MEDIUM,
        expected_duration_seconds=1800,
        steps=[
            f"Read the latest checkpoint of {ctx.label()} (qubinode-recovery incidents show "
            f"{ctx.diagnosis.fingerprint}){keys}.",
            "Remove what the failed task created after that checkpoint and restore the recorded state.",
            f"Clear {ctx.label()}{in_run(ctx)} to run it again.",
        ],
        prerequisites=["A checkpoint was recorded for the task before it failed."],
        rollback_steps=[f"Re-run {ctx.label()} to recreate what was removed."],
        success_criteria=["The resources match the checkpoint.", f"A retry of {ctx.label()} succeeds."],
    )
    return Candidate(option, intended_auto=False, note="restores the state of the latest checkpoint")


def _checkpoint_keys(checkpoint: dict[str, Any]) -> str:
    state = checkpoint.get("state", checkpoint)
    keys = [key for key in state if is_airflow_key(key)] if isinstance(state, dict) else []
    return f"; recorded keys: {', '.join(sorted(keys)[:10])}" if keys else ""
