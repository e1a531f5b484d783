"""Recovery: plan (ranked options per root cause), policy (switches, approval, dry run, circuit breaker,
outcome learning), the registry of allowlisted actions, user handlers, and the executor that runs one
option exactly once. Plain Python: nothing here imports Airflow."""

from __future__ import annotations

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
from qubinode_recovery_provider.recovery.handlers import HandlerContext, HandlerRegistry, RegisteredHandler
from qubinode_recovery_provider.recovery.learning import posterior_confidence
from qubinode_recovery_provider.recovery.planner import RecoveryPlanner
from qubinode_recovery_provider.recovery.policy import (
    AUTO_RECOVERY_PARAM,
    CircuitBreaker,
    RecoveryPolicy,
    dag_auto_recovery,
)
from qubinode_recovery_provider.recovery.render import plan_to_dict, plan_to_json, plan_to_markdown

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
