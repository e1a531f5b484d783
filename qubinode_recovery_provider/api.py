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

State (ledger, handlers, actions, switches, callbacks) is the process's
:class:`~qubinode_recovery_provider.runtime.Runtime` (:func:`qubinode_recovery_provider.runtime.current`).
The ledger is the configured one
(:meth:`Ledger.from_config`) unless :func:`configure` gives another. Automatic actions need their
implementations: :func:`configure` takes the ``retry-from-failure`` implementation and a health probe
(default: the diagnosis context collector), and :func:`register_action` adds your own. Nothing here
imports Airflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider import runtime
from qubinode_recovery_provider.models import Risk, TaskConfig
from qubinode_recovery_provider.recovery.events import FAILURE_DIAGNOSED, Subscriber, default_bus
from qubinode_recovery_provider.recovery.executor import ApprovalCallback, CallSettings, RecoveryExecutor
from qubinode_recovery_provider.recovery.policy import dag_auto_recovery
from qubinode_recovery_provider.runtime import context_probe

if TYPE_CHECKING:
    from pydantic import BaseModel

    from qubinode_recovery_provider.models import (
        Diagnosis,
        DiagnosticContext,
        FailureEvent,
        RecoveryAttempt,
        RecoveryPlan,
    )
    from qubinode_recovery_provider.recovery.actions import ActionFn, ActionRegistry, ActionSpec, Probe
    from qubinode_recovery_provider.recovery.handlers import HandlerFn, HandlerRegistry
    from qubinode_recovery_provider.recovery.policy import RecoveryPolicy

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

_UNSET: Any = runtime.UNSET  # one sentinel: "not given" passes through to the runtime as such


def configure(
    *,
    ledger: Any = _UNSET,
    retry: ActionFn | None = _UNSET,
    probe: Probe | None = _UNSET,
    restart_enabled: bool | None = None,
    analyzer: Any = _UNSET,
) -> None:
    """Set what the process's runtime works with; arguments not given stay as they are.

    :param ledger: a :class:`~qubinode_recovery_provider.store.Ledger` (default: the configured one)
    :param retry: implementation of ``retry-from-failure`` (clearing task instances); None disables it
    :param probe: ``probe(name) -> Health`` for ``wait-for-service``; None disables waiting
        (default: :func:`context_probe`)
    :param restart_enabled: enable the ``restart-service`` action (off by default)
    :param analyzer: a :class:`~qubinode_recovery_provider.diagnosis.FailureAnalyzer`
    """
    rt = runtime.current()
    if ledger is not _UNSET:
        rt.ledger = ledger
    if analyzer is not _UNSET:
        rt.analyzer = analyzer
    rt.configure(retry=retry, probe=probe, restart_enabled=restart_enabled)


def reset() -> None:
    """Forget every setting, handler, action, callback and subscriber (for tests)."""
    runtime.reset()
    default_bus().clear()


def get_ledger() -> Any:
    """The ledger in use (the configured one, opened on first use)."""
    return runtime.current().ledger


def get_handler_registry() -> HandlerRegistry:
    """The process's recovery handlers."""
    return runtime.current().handlers


def get_action_registry() -> ActionRegistry:
    """The process's action registry: the built-in actions plus :func:`register_action`'s."""
    return runtime.current().registry


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
    return runtime.current().register_action(
        name, fn, args_model, risk, enabled=enabled, description=description
    )


def set_auto_recovery_enabled(enabled: bool | None) -> None:
    """Switch automatic recovery on or off for this process (None: back to the configuration)."""
    runtime.current().auto_override = enabled


def set_approval_callback(callback: ApprovalCallback | None) -> None:
    """``callback(plan, option, reasons) -> bool`` decides options that need approval (None: nobody
    approves, they wait)."""
    runtime.current().approval_callback = callback


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
    return runtime.current().handlers.register(dag_id, task_id, handler, **options)


def record_checkpoint(
    dag_id: str, task_id: str, run_id: str, state: dict[str, Any], *, host: str | None = None
) -> None:
    """Record a JSON-serialisable state snapshot of a task; handlers receive the latest one."""
    get_ledger().record_checkpoint(dag_id, task_id, run_id, state, host=host)


def diagnose_failure(failure: str | FailureEvent, context: DiagnosticContext | None = None) -> Diagnosis:
    """Diagnose an error text or a :class:`FailureEvent` and emit ``failure_diagnosed``."""
    diagnosis = runtime.current().analyzer.analyze(failure, context)
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
    return runtime.current().planner(learn=learn).plan_recovery(diagnosis, task)


def current_policy() -> RecoveryPolicy:
    """The configured policy with this process's auto-recovery switch applied."""
    return runtime.current().policy()


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
    rt = runtime.current()
    executor = RecoveryExecutor(rt.ledger, rt.registry, rt.policy(), approval_callback=rt.approval_callback)
    return executor.execute(plan, CallSettings(**settings))
