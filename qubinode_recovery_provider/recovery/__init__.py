"""Recovery: plan (ranked options per root cause), policy (switches, approval, dry run, circuit breaker,
outcome learning), the registry of allowlisted actions, user handlers, and the executor that runs one
option exactly once. Plain Python: nothing here imports Airflow.

The names below are imported on first use, so that a failing task that only asks
:mod:`~qubinode_recovery_provider.recovery.intake` whether to start a recovery run does not load the
planner, the executor and the actions (``bench/bench_startup.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qubinode_recovery_provider.lazy import from_module, lazy_attributes

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import TaskConfig
    from qubinode_recovery_provider.recovery.actions import (
        RESTART_SERVICE,
        RETRY_FROM_FAILURE,
        RUN_HANDLER,
        WAIT_FOR_SERVICE,
        ActionDisabledError,
        ActionError,
        ActionRegistry,
        ActionResult,
        ActionSpec,
        InvalidActionArgsError,
        RestartServiceArgs,
        RetryFromFailureArgs,
        RunHandlerArgs,
        UnknownActionError,
        WaitForServiceArgs,
        build_default_registry,
    )
    from qubinode_recovery_provider.recovery.events import (
        FAILURE_DIAGNOSED,
        RECOVERY_EXECUTED,
        RECOVERY_PLAN_CREATED,
        EventBus,
        RecoveryEvent,
        default_bus,
    )
    from qubinode_recovery_provider.recovery.executor import (
        CallSettings,
        RecoveryExecutor,
        execute,
        idempotency_key,
    )
    from qubinode_recovery_provider.recovery.handlers import (
        HandlerContext,
        HandlerRegistry,
        RegisteredHandler,
    )
    from qubinode_recovery_provider.recovery.learning import posterior_confidence
    from qubinode_recovery_provider.recovery.planner import RecoveryPlanner
    from qubinode_recovery_provider.recovery.policy import (
        AUTO_RECOVERY_PARAM,
        CircuitBreaker,
        RecoveryPolicy,
        dag_auto_recovery,
    )
    from qubinode_recovery_provider.recovery.render import plan_to_dict, plan_to_json, plan_to_markdown

_WHERE = {
    **from_module(
        "qubinode_recovery_provider.models",
        ("TaskConfig",),
    ),
    **from_module(
        "qubinode_recovery_provider.recovery.actions",
        (
            "RESTART_SERVICE",
            "RETRY_FROM_FAILURE",
            "RUN_HANDLER",
            "WAIT_FOR_SERVICE",
            "ActionDisabledError",
            "ActionError",
            "ActionRegistry",
            "ActionResult",
            "ActionSpec",
            "InvalidActionArgsError",
            "RestartServiceArgs",
            "RetryFromFailureArgs",
            "RunHandlerArgs",
            "UnknownActionError",
            "WaitForServiceArgs",
            "build_default_registry",
        ),
    ),
    **from_module(
        "qubinode_recovery_provider.recovery.events",
        (
            "FAILURE_DIAGNOSED",
            "RECOVERY_EXECUTED",
            "RECOVERY_PLAN_CREATED",
            "EventBus",
            "RecoveryEvent",
            "default_bus",
        ),
    ),
    **from_module(
        "qubinode_recovery_provider.recovery.executor",
        (
            "CallSettings",
            "RecoveryExecutor",
            "execute",
            "idempotency_key",
        ),
    ),
    **from_module(
        "qubinode_recovery_provider.recovery.handlers",
        (
            "HandlerContext",
            "HandlerRegistry",
            "RegisteredHandler",
        ),
    ),
    **from_module(
        "qubinode_recovery_provider.recovery.learning",
        ("posterior_confidence",),
    ),
    **from_module(
        "qubinode_recovery_provider.recovery.planner",
        ("RecoveryPlanner",),
    ),
    **from_module(
        "qubinode_recovery_provider.recovery.policy",
        (
            "AUTO_RECOVERY_PARAM",
            "CircuitBreaker",
            "RecoveryPolicy",
            "dag_auto_recovery",
        ),
    ),
    **from_module(
        "qubinode_recovery_provider.recovery.render",
        (
            "plan_to_dict",
            "plan_to_json",
            "plan_to_markdown",
        ),
    ),
}
__getattr__ = lazy_attributes(__name__, _WHERE, globals())


__all__ = [
    "AUTO_RECOVERY_PARAM",
    "FAILURE_DIAGNOSED",
    "RECOVERY_EXECUTED",
    "RECOVERY_PLAN_CREATED",
    "RESTART_SERVICE",
    "RETRY_FROM_FAILURE",
    "RUN_HANDLER",
    "WAIT_FOR_SERVICE",
    "ActionDisabledError",
    "ActionError",
    "ActionRegistry",
    "ActionResult",
    "ActionSpec",
    "CallSettings",
    "CircuitBreaker",
    "EventBus",
    "HandlerContext",
    "HandlerRegistry",
    "InvalidActionArgsError",
    "RecoveryEvent",
    "RecoveryExecutor",
    "RecoveryPlanner",
    "RecoveryPolicy",
    "RegisteredHandler",
    "RestartServiceArgs",
    "RetryFromFailureArgs",
    "RunHandlerArgs",
    "TaskConfig",
    "UnknownActionError",
    "WaitForServiceArgs",
    "build_default_registry",
    "dag_auto_recovery",
    "default_bus",
    "execute",
    "idempotency_key",
    "plan_to_dict",
    "plan_to_json",
    "plan_to_markdown",
    "posterior_confidence",
]
