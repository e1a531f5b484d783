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

The reference guide's argument shapes work too: ``diagnose_failure(plugin_name, failure_message,
context)``, ``plan_recovery(failure_analysis, plugin_name)``, ``record_checkpoint(plugin_name, state)``,
``register_recovery_handler(plugin_name, handler)``, a one-argument ``set_approval_callback(lambda plan:
...)``; the guide's ``plugin_name`` is our ``dag_id`` (a CI job's name outside Airflow). Its
``PluginManager`` is :class:`RecoveryHooks` (also importable as ``PluginManager``), whose
``execute_recovery(recovery_plan, context)`` returns a bool. Anything that fits neither shape raises a
``TypeError`` that says which shapes exist.

State (ledger, handlers, actions, switches, callbacks) is the process's
:class:`~qubinode_recovery_provider.runtime.Runtime` (:func:`qubinode_recovery_provider.runtime.current`).
The ledger is the configured one
(:meth:`Ledger.from_config`) unless :func:`configure` gives another. Automatic actions need their
implementations: :func:`configure` takes the ``retry-from-failure`` implementation and a health probe
(default: the diagnosis context collector), and :func:`register_action` adds your own. Nothing here
imports Airflow.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from qubinode_recovery_provider import runtime
from qubinode_recovery_provider.models import AttemptOutcome, DiagnosticContext, Risk, TaskConfig
from qubinode_recovery_provider.recovery.events import FAILURE_DIAGNOSED, Subscriber, default_bus
from qubinode_recovery_provider.recovery.executor import ApprovalCallback, CallSettings, RecoveryExecutor
from qubinode_recovery_provider.recovery.handlers import DAG_CHECKPOINT
from qubinode_recovery_provider.recovery.policy import dag_auto_recovery
from qubinode_recovery_provider.runtime import context_probe

if TYPE_CHECKING:
    from pydantic import BaseModel

    from qubinode_recovery_provider.models import Diagnosis, FailureEvent, RecoveryAttempt, RecoveryPlan
    from qubinode_recovery_provider.recovery.actions import ActionFn, ActionRegistry, ActionSpec, Probe
    from qubinode_recovery_provider.recovery.handlers import HandlerFn, HandlerRegistry
    from qubinode_recovery_provider.recovery.policy import RecoveryPolicy

__all__ = [
    "DAG_CHECKPOINT",
    "PluginManager",
    "RecoveryHooks",
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


def set_approval_callback(callback: ApprovalCallback | Callable[[RecoveryPlan], bool] | None) -> None:
    """``callback(plan, option, reasons) -> bool`` decides options that need approval (None: nobody
    approves, they wait); the guide's one-argument ``callback(plan) -> bool`` works too.

    :raises TypeError: when ``callback`` is not callable or takes neither one nor three arguments
    """
    runtime.current().approval_callback = None if callback is None else _approval_callback(callback)


def _approval_callback(callback: Any) -> ApprovalCallback:
    """Our three-argument callback, or the guide's one-argument ``callback(plan)`` adapted to it."""
    if not callable(callback):
        raise TypeError(f"the approval callback must be callable, got {type(callback).__name__}")
    try:
        params = list(inspect.signature(callback).parameters.values())
    except (TypeError, ValueError):
        raise TypeError(
            "cannot read the approval callback's arguments; wrap it: lambda plan, option, reasons: ..."
        ) from None
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    if any(p.kind is p.VAR_POSITIONAL for p in params) or len(required) <= 3 <= len(positional):
        return callback
    if len(required) <= 1 <= len(positional):
        return lambda plan, option, reasons: callback(plan)
    raise TypeError(
        "the approval callback must take (plan, option, reasons) or the guide's (plan); "
        f"it takes {len(required)} required argument(s)"
    )


def subscribe(event: str, callback: Subscriber) -> Callable[[], None]:
    """Receive ``failure_diagnosed`` (the guide's ``plugin_failure_diagnosed``), ``recovery_plan_created``,
    ``recovery_executed`` (or ``"*"``); returns the function that unsubscribes. The event is also the
    guide's payload mapping (``event["plugin_name"]``, ``event["action_type"]``)."""
    return default_bus().subscribe(event, callback)


def register_recovery_handler(
    dag_id: str, task_id: str | HandlerFn | None = None, handler: HandlerFn | None = None, **options: Any
) -> Any:
    """Register a rollback handler for a DAG or a task; usable as a decorator. The guide's
    ``register_recovery_handler(plugin_name, handler)`` registers ``handler`` for every task of the DAG.

    :param dag_id: the DAG
    :param task_id: the task (None: every task of the DAG)
    :param handler: ``handler(HandlerContext) -> bool | ActionResult | None``
    :param options: ``name``, ``description``, ``risk`` (default medium), ``root_causes``,
        ``expected_duration_seconds``
    """
    registry: Any = runtime.current().handlers  # its overloads check the shapes; this forwards them
    return registry.register(dag_id, task_id, handler, **options)


def record_checkpoint(
    dag_id: str,
    task_id: str | dict[str, Any],
    run_id: str | None = None,
    state: dict[str, Any] | None = None,
    *,
    host: str | None = None,
) -> None:
    """Record a JSON-serialisable state snapshot of a task; handlers receive the latest one. The guide's
    ``record_checkpoint(plugin_name, state)`` records a DAG-wide one (task :data:`DAG_CHECKPOINT`), which
    handlers receive when their task has none.

    :raises TypeError: for any other shape
    """
    if isinstance(task_id, dict) and run_id is None and state is None:
        get_ledger().record_checkpoint(dag_id, DAG_CHECKPOINT, DAG_CHECKPOINT, task_id, host=host)
        return
    if not isinstance(task_id, str) or not isinstance(run_id, str) or not isinstance(state, dict):
        _shape_error("record_checkpoint", "(dag_id, task_id, run_id, state)", "(plugin_name, state)")
    get_ledger().record_checkpoint(dag_id, task_id, run_id, state, host=host)


def diagnose_failure(
    failure: str | FailureEvent | DiagnosticContext,
    context: DiagnosticContext | str | None = None,
    guide_context: DiagnosticContext | Mapping[str, Any] | None = _UNSET,
) -> Diagnosis:
    """Diagnose an error text, a :class:`FailureEvent` or a :class:`DiagnosticContext` and emit
    ``failure_diagnosed``. The guide's ``diagnose_failure(plugin_name, failure_message, context)`` works
    too (its context: a :class:`DiagnosticContext`, a dict of its fields, or None); the diagnosis then
    carries ``plugin_name`` as its ``dag_id``.

    :raises TypeError: for any other shape
    """
    if isinstance(context, str):
        if not isinstance(failure, str):
            _shape_error("diagnose_failure", "(failure, context)", "(plugin_name, failure_message, context)")
        ctx = _guide_context(None if guide_context is _UNSET else guide_context)
        failure = ctx.model_copy(update={"plugin_name": failure, "error_message": context})
        context = None
    elif guide_context is not _UNSET or not (context is None or isinstance(context, DiagnosticContext)):
        _shape_error("diagnose_failure", "(failure, context)", "(plugin_name, failure_message, context)")
    diagnosis = runtime.current().analyzer.analyze(failure, context)
    default_bus().emit(FAILURE_DIAGNOSED, diagnosis=diagnosis, failure=failure)
    return diagnosis


def _guide_context(value: Any) -> DiagnosticContext:
    if value is None:
        return DiagnosticContext()
    if isinstance(value, DiagnosticContext):
        return value
    if isinstance(value, Mapping):
        return DiagnosticContext.model_validate(dict(value))
    raise TypeError(f"the context must be a DiagnosticContext, a dict or None, got {type(value).__name__}")


def _shape_error(name: str, ours: str, guide: str) -> NoReturn:
    raise TypeError(f"{name} takes {ours} or the reference guide's {guide}")


def plan_recovery(
    diagnosis: Diagnosis, task: TaskConfig | str | None = None, *, learn: bool = True
) -> RecoveryPlan:
    """Plan the recovery of ``diagnosis`` and emit ``recovery_plan_created``. The guide's
    ``plan_recovery(failure_analysis, plugin_name)`` gives the DAG id (a CI job's name) as a string.

    :param diagnosis: the diagnosis
    :param task: the failed task's configuration (ids, timeout, try number), or the guide's plugin name
    :param learn: adjust confidences with the ledger's recorded outcomes
    :raises TypeError: when ``task`` is neither
    """
    if isinstance(task, str):
        task = TaskConfig(dag_id=task)
    elif task is not None and not isinstance(task, TaskConfig):
        _shape_error("plan_recovery", "(diagnosis, task: TaskConfig)", "(failure_analysis, plugin_name)")
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
    :raises TypeError: when ``task`` is not a :class:`TaskConfig` (the guide's ``execute_recovery(plan,
        context) -> bool`` is :meth:`RecoveryHooks.execute_recovery`)
    """
    if task is not None and not isinstance(task, TaskConfig):
        raise TypeError(
            "execute_recovery takes (plan, task: TaskConfig) and returns a RecoveryAttempt; the reference "
            "guide's execute_recovery(recovery_plan, context) -> bool is RecoveryHooks().execute_recovery"
        )
    if task is not None:
        settings.setdefault("dag_auto_recovery", dag_auto_recovery(task.params, task.tags))
        settings.setdefault("host", task.host)
    rt = runtime.current()
    executor = RecoveryExecutor(rt.ledger, rt.registry, rt.policy(), approval_callback=rt.approval_callback)
    return executor.execute(plan, CallSettings(**settings))


class RecoveryHooks:
    """The reference guide's ``PluginManager`` recovery hooks, with its names, argument shapes and return
    types, over this module's functions (the process's runtime: one state for both).

    ``PluginManager`` is the same class. The guide's plugin execution (``execute_plugin``) is Airflow's
    job here: add :class:`~qubinode_recovery_provider.notifications.RecoveryNotifier` to the DAG.

    :ivar last_attempt: the :class:`RecoveryAttempt` behind the last :meth:`execute_recovery` (its outcome
        and detail say why it returned False)
    """

    def __init__(self, *_plugin_dirs: Any) -> None:
        self.last_attempt: RecoveryAttempt | None = None

    def initialize(self) -> None:
        """Load the pattern library and open the ledger now rather than at the first failure."""
        rt = runtime.current()
        _ = rt.analyzer
        rt.ledger_or_none()

    def diagnose_failure(
        self,
        plugin_name: str,
        failure_message: str,
        context: DiagnosticContext | Mapping[str, Any] | None = None,
    ) -> Diagnosis:
        """Diagnose ``failure_message`` of ``plugin_name`` (see :func:`diagnose_failure`)."""
        return diagnose_failure(plugin_name, failure_message, context)

    def plan_recovery(self, failure_analysis: Diagnosis, plugin_name: str | None = None) -> RecoveryPlan:
        """Plan the recovery (see :func:`plan_recovery`)."""
        return plan_recovery(failure_analysis, plugin_name)

    def execute_recovery(
        self, recovery_plan: RecoveryPlan, context: TaskConfig | Mapping[str, Any] | None = None
    ) -> bool:
        """Carry out the plan's recommended option once (see :func:`execute_recovery`); True only when it
        ran and succeeded (a dry run, an escalation or an option waiting for approval is False).

        :param recovery_plan: the plan
        :param context: the failed task (a :class:`TaskConfig` or a dict of its fields), or None
        """
        if isinstance(context, Mapping):
            context = TaskConfig.model_validate(dict(context))
        self.last_attempt = execute_recovery(recovery_plan, context)
        return self.last_attempt.outcome is AttemptOutcome.SUCCEEDED

    def record_checkpoint(self, plugin_name: str, state: dict[str, Any]) -> None:
        """Record a DAG-wide checkpoint (see :func:`record_checkpoint`)."""
        record_checkpoint(plugin_name, state)

    def register_recovery_handler(self, plugin_name: str, handler: HandlerFn) -> None:
        """Register ``handler`` for every task of the DAG ``plugin_name``."""
        register_recovery_handler(plugin_name, None, handler)

    def set_auto_recovery_enabled(self, enabled: bool) -> None:
        """Switch automatic recovery on or off for this process."""
        set_auto_recovery_enabled(enabled)

    def set_approval_callback(self, callback: Callable[..., bool] | None) -> None:
        """``callback(plan) -> bool`` (or ours, ``(plan, option, reasons)``) approves options."""
        set_approval_callback(callback)

    def execute_plugin(self, *_args: Any, **_kwargs: Any) -> NoReturn:
        """Not here: Airflow runs the tasks (the guide's plugins) and the failure callback recovers them.

        :raises NotImplementedError: always, saying what to use instead
        """
        raise NotImplementedError(
            "Airflow runs the tasks here: add on_failure_callback=RecoveryNotifier() and "
            "retry_policy=DiagnosisRetryPolicy() to the DAG (docs/reference-guide.md)"
        )


#: The reference guide's name of :class:`RecoveryHooks`.
PluginManager = RecoveryHooks
