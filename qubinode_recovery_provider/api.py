"""A small public Python API for code outside Airflow (scripts, CI jobs, other schedulers).

The names are the seed's hooks, so its users feel at home::

    from qubinode_recovery_provider import api

    api.register_recovery_handler("build_vm", "create_vm", delete_half_built_vm)
    api.record_checkpoint("build_vm", "create_vm", run_id, {"vm_name": "web1"})

    diagnosis = api.diagnose_failure(error_text)          # -> Diagnosis
    plan = api.plan_recovery(diagnosis)                    # -> RecoveryPlan
    attempt = api.execute_recovery(plan, dry_run=True)     # -> RecoveryAttempt

    api.set_auto_recovery_enabled(False)                   # process-wide switch
    api.set_approval_callback(lambda plan, option, reasons: ask_a_human(plan, option, reasons))
    api.subscribe("recovery_executed", lambda event: print(event.data["attempt"]))

State (ledger, handlers, actions, switches, callbacks) is per process. The ledger is the configured one
(:meth:`Ledger.from_config`) unless :func:`configure` gives another. Automatic actions need their
implementations: :func:`configure` takes the ``retry-from-failure`` implementation and a health probe
(default: the diagnosis context collector), and :func:`register_action` adds your own. Nothing here
imports Airflow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.models import Health, Risk, TaskConfig
from qubinode_recovery_provider.recovery.actions import ActionRegistry, ActionSpec, build_default_registry
from qubinode_recovery_provider.recovery.events import FAILURE_DIAGNOSED, Subscriber, default_bus
from qubinode_recovery_provider.recovery.executor import ApprovalCallback, CallSettings, RecoveryExecutor
from qubinode_recovery_provider.recovery.handlers import HandlerFn, HandlerRegistry
from qubinode_recovery_provider.recovery.planner import RecoveryPlanner
from qubinode_recovery_provider.recovery.policy import RecoveryPolicy, dag_auto_recovery

if TYPE_CHECKING:
    from pydantic import BaseModel

    from qubinode_recovery_provider.models import (
        Diagnosis,
        DiagnosticContext,
        FailureEvent,
        RecoveryAttempt,
        RecoveryPlan,
    )
    from qubinode_recovery_provider.recovery.actions import ActionFn, Probe

__all__ = [
    "TaskConfig",
    "configure",
    "context_probe",
    "current_policy",
    "diagnose_failure",
    "execute_recovery",
    "get_action_registry",
    "get_handler_registry",
    "get_ledger",
    "plan_recovery",
    "record_checkpoint",
    "register_action",
    "register_recovery_handler",
    "reset",
    "set_approval_callback",
    "set_auto_recovery_enabled",
    "subscribe",
]

_UNSET: Any = object()


class _State:
    """The process's recovery state."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.ledger: Any | None = None
        self.analyzer: Any | None = None
        self.handlers = HandlerRegistry()
        self.registry: ActionRegistry | None = None
        self.custom_actions: list[tuple[str, ActionFn, type[BaseModel], Risk, bool, str]] = []
        self.retry: ActionFn | None = None
        self.probe: Probe | None = None
        self.use_context_probe = True
        self.restart_enabled = False
        self.auto_override: bool | None = None
        self.approval_callback: ApprovalCallback | None = None


_state = _State()


def configure(
    *,
    ledger: Any = _UNSET,
    retry: ActionFn | None = _UNSET,
    probe: Probe | None = _UNSET,
    restart_enabled: bool | None = None,
    analyzer: Any = _UNSET,
) -> None:
    """Set what the API works with; arguments not given stay as they are.

    :param ledger: a :class:`~qubinode_recovery_provider.store.Ledger` (default: the configured one)
    :param retry: implementation of ``retry-from-failure`` (clearing task instances); None disables it
    :param probe: ``probe(name) -> Health`` for ``wait-for-service``; None disables waiting
        (default: :func:`context_probe`)
    :param restart_enabled: enable the ``restart-service`` action (off by default)
    :param analyzer: a :class:`~qubinode_recovery_provider.diagnosis.FailureAnalyzer`
    """
    with _state.lock:
        if ledger is not _UNSET:
            _state.ledger = ledger
        if retry is not _UNSET:
            _state.retry = retry
        if probe is not _UNSET:
            _state.probe, _state.use_context_probe = probe, False
        if restart_enabled is not None:
            _state.restart_enabled = restart_enabled
        if analyzer is not _UNSET:
            _state.analyzer = analyzer
        _state.registry = None


def reset() -> None:
    """Forget every setting, handler, action, callback and subscriber (for tests)."""
    global _state
    _state = _State()
    default_bus().clear()


def get_ledger() -> Any:
    """The ledger in use (the configured one, opened on first use)."""
    with _state.lock:
        if _state.ledger is None:
            from qubinode_recovery_provider.store import Ledger

            _state.ledger = Ledger.from_config()
        return _state.ledger


def get_handler_registry() -> HandlerRegistry:
    """The process's recovery handlers."""
    return _state.handlers


def get_action_registry() -> ActionRegistry:
    """The process's action registry: the built-in actions plus :func:`register_action`'s."""
    with _state.lock:
        if _state.registry is None:
            _state.registry = _build_registry()
        return _state.registry


def _build_registry() -> ActionRegistry:
    registry = build_default_registry(
        retry=_state.retry,
        probe=context_probe if _state.use_context_probe else _state.probe,
        handlers=_state.handlers,
        checkpoints=_LazyCheckpoints(),
        restart_enabled=_state.restart_enabled,
    )
    for name, fn, model, risk, enabled, description in _state.custom_actions:
        registry.register(name, fn, model, risk, enabled=enabled, description=description)
    return registry


class _LazyCheckpoints:
    """Reads checkpoints from the ledger only when a handler runs."""

    def latest_checkpoint(
        self, dag_id: str, task_id: str, run_id: str | None = None
    ) -> dict[str, Any] | None:
        return get_ledger().latest_checkpoint(dag_id, task_id, run_id)


def register_action(
    name: str,
    fn: ActionFn,
    args_model: type[BaseModel],
    risk: Risk = Risk.LOW,
    *,
    enabled: bool = True,
    description: str = "",
) -> ActionSpec:
    """Add an allowlisted automatic action (see :meth:`ActionRegistry.register`)."""
    with _state.lock:
        spec = get_action_registry().register(
            name, fn, args_model, risk, enabled=enabled, description=description
        )
        _state.custom_actions.append((name, fn, args_model, spec.risk, enabled, description))
        return spec


def set_auto_recovery_enabled(enabled: bool | None) -> None:
    """Switch automatic recovery on or off for this process (None: back to the configuration)."""
    _state.auto_override = enabled


def set_approval_callback(callback: ApprovalCallback | None) -> None:
    """``callback(plan, option, reasons) -> bool`` decides options that need approval (None: nobody
    approves, they wait)."""
    _state.approval_callback = callback


def subscribe(event: str, callback: Subscriber) -> Callable[[], None]:
    """Receive ``failure_diagnosed``, ``recovery_plan_created``, ``recovery_executed`` (or ``"*"``);
    returns the function that unsubscribes."""
    return default_bus().subscribe(event, callback)


def register_recovery_handler(
    dag_id: str, task_id: str | None = None, handler: HandlerFn | None = None, **options: Any
) -> Any:
    """Register a rollback handler for a DAG or a task; usable as a decorator.

    :param dag_id: the DAG
    :param task_id: the task (None: every task of the DAG)
    :param handler: ``handler(HandlerContext) -> bool | ActionResult | None``
    :param options: ``name``, ``description``, ``risk`` (default medium), ``root_causes``,
        ``expected_duration_seconds``
    """
    return _state.handlers.register(dag_id, task_id, handler, **options)


def record_checkpoint(
    dag_id: str, task_id: str, run_id: str, state: dict[str, Any], *, host: str | None = None
) -> None:
    """Record a JSON-serialisable state snapshot of a task; handlers receive the latest one."""
    get_ledger().record_checkpoint(dag_id, task_id, run_id, state, host=host)


def diagnose_failure(failure: str | FailureEvent, context: DiagnosticContext | None = None) -> Diagnosis:
    """Diagnose an error text or a :class:`FailureEvent` and emit ``failure_diagnosed``."""
    with _state.lock:
        if _state.analyzer is None:
            from qubinode_recovery_provider.diagnosis import FailureAnalyzer

            _state.analyzer = FailureAnalyzer()
        analyzer = _state.analyzer
    diagnosis = analyzer.analyze(failure, context)
    default_bus().emit(FAILURE_DIAGNOSED, diagnosis=diagnosis, failure=failure)
    return diagnosis


def plan_recovery(
    diagnosis: Diagnosis, task: TaskConfig | None = None, *, learn: bool = True
) -> RecoveryPlan:
    """Plan the recovery of ``diagnosis`` and emit ``recovery_plan_created``.

    :param diagnosis: the diagnosis
    :param task: the failed task's configuration (ids, timeout, try number)
    :param learn: adjust confidences with the ledger's recorded outcomes
    """
    planner = RecoveryPlanner(
        ledger=_ledger_or_none() if learn else None,
        handlers=_state.handlers,
        actions=get_action_registry(),
        min_auto_confidence=current_policy().min_auto_confidence,
    )
    return planner.plan_recovery(diagnosis, task)


def _ledger_or_none() -> Any | None:
    try:
        return get_ledger()
    except Exception:
        return None


def current_policy() -> RecoveryPolicy:
    """The configured policy with this process's auto-recovery switch applied."""
    override = _state.auto_override
    if override is None:
        return RecoveryPolicy.from_config()
    return RecoveryPolicy.from_config(auto_recovery_enabled=override)


def execute_recovery(plan: RecoveryPlan, task: TaskConfig | None = None, **settings: Any) -> RecoveryAttempt:
    """Carry out the recommended (or ``option_index``) option of ``plan`` exactly once.

    :param plan: the plan
    :param task: the failed task's configuration: its DAG params and tags give the DAG's switch
        (``qubinode_auto_recovery``) and its host the circuit breaker's host, unless set explicitly
    :param settings: ``option_index``, ``host``, ``dag_auto_recovery``, ``auto_recovery``, ``dry_run``,
        ``approved`` (see :class:`~qubinode_recovery_provider.recovery.executor.CallSettings`)
    """
    if task is not None:
        settings.setdefault("dag_auto_recovery", dag_auto_recovery(task.params, task.tags))
        settings.setdefault("host", task.host)
    executor = RecoveryExecutor(
        get_ledger(),
        get_action_registry(),
        current_policy(),
        approval_callback=_state.approval_callback,
    )
    return executor.execute(plan, CallSettings(**settings))


def context_probe(name: str) -> Health:
    """Health of a systemd unit, podman container or resource (``memory``, ``cpu``, ``disk``), read
    with the diagnosis context collector; ``unknown`` when it cannot tell."""
    from qubinode_recovery_provider import config
    from qubinode_recovery_provider.diagnosis import probes as context

    if name in {"memory", "cpu", "disk"}:
        return context.collect_resources().state
    if name in config.get_list("podman_containers"):
        found = context.collect_podman([name])
    else:
        found = context.collect_systemd([name])
    return found[0].state if found else Health.UNKNOWN
