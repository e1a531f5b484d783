"""The RETRY options: at once with a backoff (and a longer timeout when the cause asks for one), or only
after a person fixed the cause."""

from __future__ import annotations

from qubinode_recovery_provider.models import Risk
from qubinode_recovery_provider.recovery.actions import RETRY_FROM_FAILURE
from qubinode_recovery_provider.recovery.options.base import (
    A,
    Candidate,
    PlanContext,
    in_run,
    make_option,
    retry_success,
)
from qubinode_recovery_provider.recovery.playbooks import RetryMode

MAX_RETRY_DELAY_SECONDS = 1800
#: The backoff doubles per try at most this many times (2**64 s is past any cap; the exponent of a
#: try number like 10**20 must never be computed).
MAX_BACKOFF_DOUBLINGS = 64
MAX_TIMEOUT_SECONDS = 6 * 3600
REPEAT_PENALTY = 0.85


def retry_candidates(ctx: PlanContext) -> list[Candidate]:
    blind = ctx.playbook.blind_retry and ctx.retryable is not False
    if not blind or ctx.playbook.retry_mode is RetryMode.AFTER_FIX:
        return [_retry_after_fix(ctx)]
    return [_retry_now(ctx)]


def _retry_delay(ctx: PlanContext) -> int:
    base = ctx.diagnosis.retry_delay_seconds or ctx.playbook.retry_delay_seconds
    if not base and ctx.task.retry_delay_seconds:
        base = int(ctx.task.retry_delay_seconds)
    doublings = min(ctx.tries - 1, MAX_BACKOFF_DOUBLINGS)
    return int(min(base * 2**doublings, MAX_RETRY_DELAY_SECONDS))


def _longer_timeout(ctx: PlanContext) -> int | None:
    current = ctx.task.execution_timeout_seconds
    if current is None:
        return None
    longer = max(current * 2, current + 300)
    return int(min(longer, max(MAX_TIMEOUT_SECONDS, current)))


def _retry_now(ctx: PlanContext) -> Candidate:
    delay = _retry_delay(ctx)
    timeout = _longer_timeout(ctx) if ctx.playbook.retry_mode is RetryMode.LONGER_TIMEOUT else None
    penalty = REPEAT_PENALTY ** min(ctx.tries - 1, MAX_BACKOFF_DOUBLINGS)  # 0.85**64 rounds to 0.0
    confidence = ctx.playbook.retry_confidence * ctx.scale * penalty
    target = ctx.retry_target()
    args = {**target, "delay_seconds": delay, "execution_timeout_seconds": timeout} if target else {}
    action = RETRY_FROM_FAILURE if target and RETRY_FROM_FAILURE in ctx.actions else None
    steps = [
        f"Wait {delay}s, then clear {ctx.label()}{in_run(ctx)} with its downstream tasks "
        "(Airflow UI: Clear > Only failed; REST API: clearTaskInstances)."
    ]
    steps += _timeout_steps(ctx, timeout)
    steps.append("Finished upstream tasks are kept: the run resumes from the failed task.")
    note = f"retries {ctx.label()} after {delay}s"
    if ctx.playbook.retry_mode is RetryMode.LONGER_TIMEOUT:
        note += f" with a longer timeout ({timeout}s)" if timeout else " with a longer timeout"
    option = make_option(
        ctx,
        type=A.RETRY,
        title=_retry_title(ctx, delay, timeout),
        confidence=confidence,
        risk=Risk.LOW,
        expected_duration_seconds=delay + int(timeout or 600),
        automatic=action is not None,
        action=action,
        action_args=args if action else {},
        steps=steps,
        prerequisites=_retry_prerequisites(ctx),
        rollback_steps=[
            "If the retry leaves partial resources behind, run the rollback option or "
            "remove them, then mark the task failed."
        ],
        success_criteria=retry_success(ctx),
    )
    return Candidate(option, intended_auto=True, note=note)


def _retry_title(ctx: PlanContext, delay: int, timeout: int | None) -> str:
    if ctx.playbook.retry_mode is RetryMode.LONGER_TIMEOUT:
        longer = f"{timeout}s" if timeout else "a longer timeout (about twice the current one)"
        return f"Retry from the failed task with execution_timeout {longer}"
    return f"Retry from the failed task after {delay}s"


def _timeout_steps(ctx: PlanContext, timeout: int | None) -> list[str]:
    if ctx.playbook.retry_mode is not RetryMode.LONGER_TIMEOUT:
        return []
    current = ctx.task.execution_timeout_seconds
    if timeout is None:
        return ["Give the task a longer execution_timeout for this try (about twice the current one)."]
    return [f"Give the task execution_timeout={timeout}s for this try (it was {int(current or 0)}s)."]


def _retry_after_fix(ctx: PlanContext) -> Candidate:
    target = ctx.retry_target()
    action = RETRY_FROM_FAILURE if target and RETRY_FROM_FAILURE in ctx.actions else None
    option = make_option(
        ctx,
        type=A.RETRY,
        title="Retry from the failed task once the cause is fixed",
        confidence=ctx.playbook.retry_confidence * ctx.scale,
        risk=Risk.LOW,
        expected_duration_seconds=600,
        automatic=False,
        action=action,
        action_args=target if action and target else {},
        steps=[
            f"After the manual fix, clear {ctx.label()}{in_run(ctx)} with its downstream tasks.",
            "Finished upstream tasks are kept: the run resumes from the failed task.",
        ],
        prerequisites=[
            "The cause is fixed (see the manual fix option): an unchanged retry fails the same way.",
            *_retry_prerequisites(ctx),
        ],
        rollback_steps=["Mark the task failed again if the retry does not succeed, and escalate."],
        success_criteria=retry_success(ctx),
    )
    return Candidate(
        option,
        intended_auto=False,
        note="retries only after a person fixed the cause (no blind retry for this cause)",
    )


def _retry_prerequisites(ctx: PlanContext) -> list[str]:
    where = f" of DAG `{ctx.dag}`" if ctx.dag else ""
    return [f"The run{where} still exists and its upstream tasks finished successfully."]
