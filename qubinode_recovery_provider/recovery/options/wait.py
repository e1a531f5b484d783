"""The WAIT options: wait for a known service or resource to be healthy, or restart an allowlisted unit
first, then resume the run."""

from __future__ import annotations

from typing import Any

from qubinode_recovery_provider.models import Risk
from qubinode_recovery_provider.recovery import playbooks
from qubinode_recovery_provider.recovery.actions import RESTART_SERVICE, RETRY_FROM_FAILURE, WAIT_FOR_SERVICE
from qubinode_recovery_provider.recovery.options.base import (
    A,
    Candidate,
    PlanContext,
    in_run,
    make_option,
    retry_success,
)
from qubinode_recovery_provider.recovery.safety import unit_stem

WAIT_TIMEOUT_SECONDS = 300


def wait_candidates(ctx: PlanContext) -> list[Candidate]:
    service = ctx.wait_target
    if service is None:
        return []
    candidates = [_wait(ctx, service)]
    if _restartable(ctx, service):
        candidates.append(_restart(ctx, service))
    return candidates


def _then_retry(ctx: PlanContext) -> dict[str, Any] | None:
    target = ctx.retry_target()
    if target is None or RETRY_FROM_FAILURE not in ctx.actions:
        return None
    return target


def _wait(ctx: PlanContext, service: str) -> Candidate:
    known = unit_stem(service) in ctx.known_services
    then_retry = _then_retry(ctx)
    action = WAIT_FOR_SERVICE if known and WAIT_FOR_SERVICE in ctx.actions and then_retry else None
    auto = bool(ctx.retryable)
    args = {
        "service": service,
        "timeout_seconds": WAIT_TIMEOUT_SECONDS,
        "poll_seconds": 10.0,
        "then_retry": then_retry,
    }
    option = make_option(
        ctx,
        type=A.WAIT,
        title=f"Wait for {service} to be healthy, then retry",
        confidence=ctx.playbook.wait_confidence * ctx.scale,
        risk=Risk.NONE if auto else Risk.LOW,
        expected_duration_seconds=WAIT_TIMEOUT_SECONDS // 2 + 600,
        automatic=action is not None and auto,
        action=action,
        action_args=args if action else {},
        steps=_wait_steps(ctx, service),
        prerequisites=[
            f"{service} is installed and enabled on the host; it is expected to come back "
            "by itself (restarting, flapping or briefly overloaded)."
            if auto
            else f"A person has started or repaired {service}."
        ],
        rollback_steps=["Nothing to undo: waiting changes nothing."],
        success_criteria=[f"{service} reports healthy within {WAIT_TIMEOUT_SECONDS}s.", *retry_success(ctx)],
    )
    note = f"waits up to {WAIT_TIMEOUT_SECONDS}s for {service} to be healthy, then resumes the run"
    return Candidate(option, intended_auto=auto, note=note)


def _wait_steps(ctx: PlanContext, service: str) -> list[str]:
    if service in playbooks.RESOURCES:
        check = {"memory": "free -h", "cpu": "uptime", "disk": "df -h"}[service]
        first = f"Watch {service} until the pressure is gone: `{check}`."
    else:
        first = (
            f"Probe {service} every 10s for up to {WAIT_TIMEOUT_SECONDS}s: `systemctl is-active {service}`."
        )
    return [first, f"When it is healthy, clear {ctx.label()}{in_run(ctx)} with its downstream tasks."]


def _restartable(ctx: PlanContext, service: str) -> bool:
    return RESTART_SERVICE in ctx.actions and unit_stem(service) in ctx.units


def _restart(ctx: PlanContext, unit: str) -> Candidate:
    then_retry = _then_retry(ctx)
    args = {"unit": unit, "timeout_seconds": 90, "wait_healthy_seconds": 120, "then_retry": then_retry}
    option = make_option(
        ctx,
        type=A.WAIT,
        title=f"Restart {unit}, wait until it is healthy, then retry",
        confidence=ctx.playbook.wait_confidence * 0.9 * ctx.scale,
        risk=Risk.MEDIUM,
        expected_duration_seconds=900,
        automatic=bool(ctx.retryable) and then_retry is not None,
        action=RESTART_SERVICE if then_retry is not None else None,
        action_args=args if then_retry is not None else {},
        steps=[
            f"`sudo systemctl restart {unit}` (list arguments, 90s timeout).",
            f"Wait up to 120s for {unit} to be healthy.",
            f"Clear {ctx.label()}{in_run(ctx)} with its downstream tasks.",
        ],
        prerequisites=[
            f"{unit} is one of the configured systemd_units and may be restarted on this host.",
            "Other workloads using it tolerate a short interruption.",
        ],
        rollback_steps=[
            f"If {unit} does not come back: `systemctl status {unit}`, "
            f"`journalctl -u {unit} --since -15min`, then escalate."
        ],
        success_criteria=[f"{unit} is active after the restart.", *retry_success(ctx)],
    )
    return Candidate(
        option,
        intended_auto=bool(ctx.retryable),
        note=f"restarts {unit} (interrupts its other users), then resumes the run",
    )
