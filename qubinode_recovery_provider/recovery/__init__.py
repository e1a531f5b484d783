"""Recovery: plan (ranked options per root cause), policy (switches, approval, dry run, circuit breaker,
outcome learning), the registry of allowlisted actions, user handlers, and the executor that runs one
option exactly once. Plain Python: nothing here imports Airflow.

The names below are imported on first use, so that a failing task that only asks
:mod:`~qubinode_recovery_provider.recovery.intake` whether to start a recovery run does not load the
planner, the executor and the actions (``bench/bench_startup.py``)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
    "TaskConfig": "qubinode_recovery_provider.models",
    "RESTART_SERVICE": "qubinode_recovery_provider.recovery.actions",
    "RETRY_FROM_FAILURE": "qubinode_recovery_provider.recovery.actions",
    "RUN_HANDLER": "qubinode_recovery_provider.recovery.actions",
    "WAIT_FOR_SERVICE": "qubinode_recovery_provider.recovery.actions",
    "ActionDisabledError": "qubinode_recovery_provider.recovery.actions",
    "ActionError": "qubinode_recovery_provider.recovery.actions",
    "ActionRegistry": "qubinode_recovery_provider.recovery.actions",
    "ActionResult": "qubinode_recovery_provider.recovery.actions",
    "ActionSpec": "qubinode_recovery_provider.recovery.actions",
    "InvalidActionArgsError": "qubinode_recovery_provider.recovery.actions",
    "RestartServiceArgs": "qubinode_recovery_provider.recovery.actions",
    "RetryFromFailureArgs": "qubinode_recovery_provider.recovery.actions",
    "RunHandlerArgs": "qubinode_recovery_provider.recovery.actions",
    "UnknownActionError": "qubinode_recovery_provider.recovery.actions",
    "WaitForServiceArgs": "qubinode_recovery_provider.recovery.actions",
    "build_default_registry": "qubinode_recovery_provider.recovery.actions",
    "FAILURE_DIAGNOSED": "qubinode_recovery_provider.recovery.events",
    "RECOVERY_EXECUTED": "qubinode_recovery_provider.recovery.events",
    "RECOVERY_PLAN_CREATED": "qubinode_recovery_provider.recovery.events",
    "EventBus": "qubinode_recovery_provider.recovery.events",
    "RecoveryEvent": "qubinode_recovery_provider.recovery.events",
    "default_bus": "qubinode_recovery_provider.recovery.events",
    "CallSettings": "qubinode_recovery_provider.recovery.executor",
    "RecoveryExecutor": "qubinode_recovery_provider.recovery.executor",
    "execute": "qubinode_recovery_provider.recovery.executor",
    "idempotency_key": "qubinode_recovery_provider.recovery.executor",
    "HandlerContext": "qubinode_recovery_provider.recovery.handlers",
    "HandlerRegistry": "qubinode_recovery_provider.recovery.handlers",
    "RegisteredHandler": "qubinode_recovery_provider.recovery.handlers",
    "posterior_confidence": "qubinode_recovery_provider.recovery.learning",
    "RecoveryPlanner": "qubinode_recovery_provider.recovery.planner",
    "AUTO_RECOVERY_PARAM": "qubinode_recovery_provider.recovery.policy",
    "CircuitBreaker": "qubinode_recovery_provider.recovery.policy",
    "RecoveryPolicy": "qubinode_recovery_provider.recovery.policy",
    "dag_auto_recovery": "qubinode_recovery_provider.recovery.policy",
    "plan_to_dict": "qubinode_recovery_provider.recovery.render",
    "plan_to_json": "qubinode_recovery_provider.recovery.render",
    "plan_to_markdown": "qubinode_recovery_provider.recovery.render",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
