"""Recovery handlers that users register per DAG or per task, and the checkpoints they read.

A handler undoes what a failed task left behind (delete the half-built VM, release a lease) so that the
task can run again. The planner offers it as a ROLLBACK option; the executor runs it through the
``run-handler`` action, by the name it was registered under, never by anything a plan or a log says.

Example::

    from qubinode_recovery_provider.api import register_recovery_handler, record_checkpoint

    @register_recovery_handler("build_vm", "create_vm")
    def delete_half_built_vm(ctx):
        vm = (ctx.checkpoint or {}).get("vm_name")
        ...  # your own code, e.g. the kcli Python API
        return True
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, overload

from pydantic import BaseModel, ConfigDict, Field

from qubinode_recovery_provider.models import Risk, RootCause
from qubinode_recovery_provider.recovery.actions import ActionResult, RunHandlerArgs
from qubinode_recovery_provider.recovery.safety import AIRFLOW_KEY_RE, REGISTERED_NAME_RE

log = logging.getLogger(__name__)


class CheckpointSource(Protocol):
    """Where checkpoints are read from (the ledger)."""

    def latest_checkpoint(
        self, dag_id: str, task_id: str, run_id: str | None = None
    ) -> dict[str, Any] | None: ...


class HandlerContext(BaseModel):
    """What a handler is told about the failure it handles.

    :param checkpoint: the latest state recorded with ``record_checkpoint`` for this task, if any
    """

    model_config = ConfigDict(frozen=True)

    handler: str
    dag_id: str
    task_id: str | None = None
    run_id: str | None = None
    checkpoint: dict[str, Any] | None = Field(default=None)


HandlerFn = Callable[[HandlerContext], "ActionResult | bool | None"]


@dataclass(frozen=True)
class RegisteredHandler:
    """One registered handler.

    :param name: the allowlisted name plans refer to
    :param dag_id: the DAG it belongs to
    :param task_id: the task, or None for every task of the DAG
    :param root_causes: the causes it applies to, or None for all
    """

    name: str
    dag_id: str
    task_id: str | None
    fn: HandlerFn
    description: str = ""
    risk: Risk = Risk.MEDIUM
    root_causes: frozenset[RootCause] | None = None
    expected_duration_seconds: int = 300

    def applies_to(self, dag_id: str | None, task_id: str | None, root_cause: RootCause) -> bool:
        """True when this handler covers that task and cause."""
        if dag_id != self.dag_id or (self.task_id is not None and self.task_id != task_id):
            return False
        return self.root_causes is None or root_cause in self.root_causes


class HandlerRegistry:
    """Per-DAG and per-task recovery handlers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[str, RegisteredHandler] = {}

    @overload
    def register(
        self, dag_id: str, task_id: str | None = None, handler: None = None, **options: Any
    ) -> Callable[[HandlerFn], HandlerFn]: ...

    @overload
    def register(
        self, dag_id: str, task_id: HandlerFn, handler: None = None, **options: Any
    ) -> HandlerFn: ...

    @overload
    def register(self, dag_id: str, task_id: str | None, handler: HandlerFn, **options: Any) -> HandlerFn: ...

    def register(
        self,
        dag_id: str,
        task_id: str | HandlerFn | None = None,
        handler: HandlerFn | None = None,
        **options: Any,
    ) -> HandlerFn | Callable[[HandlerFn], HandlerFn]:
        """Register ``handler`` for a DAG (all tasks) or one task; usable as a decorator. The reference
        guide's ``register(plugin_name, handler)`` (a callable in second place) registers it for the DAG.

        :param dag_id: the DAG
        :param task_id: the task; None covers every task of the DAG
        :param handler: ``handler(HandlerContext) -> ActionResult | bool | None``
        :param options: ``name``, ``description``, ``risk``, ``root_causes``,
            ``expected_duration_seconds``
        :raises TypeError: when the arguments fit neither shape (never registers nothing silently)
        """
        if callable(task_id):
            if handler is not None:
                raise TypeError(
                    "give (dag_id, task_id, handler) or the guide's (plugin_name, handler), not both"
                )
            task_id, handler = None, task_id
        elif task_id is not None and not isinstance(task_id, str):
            raise TypeError(f"task_id must be a string or None, got {type(task_id).__name__}")
        if handler is None:

            def decorator(fn: HandlerFn) -> HandlerFn:
                self._add(dag_id, task_id, fn, **options)
                return fn

            return decorator
        self._add(dag_id, task_id, handler, **options)
        return handler

    def _add(
        self,
        dag_id: str,
        task_id: str | None,
        fn: HandlerFn,
        *,
        name: str | None = None,
        description: str = "",
        risk: Risk | str = Risk.MEDIUM,
        root_causes: Iterable[RootCause | str] | None = None,
        expected_duration_seconds: int = 300,
    ) -> RegisteredHandler:
        _check_ids(dag_id, task_id)
        if not callable(fn):
            raise TypeError("a recovery handler must be callable")
        fn_name = getattr(fn, "__name__", "")
        name = name or f"{dag_id}.{task_id or '*'}.{fn_name if fn_name.isidentifier() else 'handler'}"
        if not REGISTERED_NAME_RE.match(name):
            raise ValueError(f"invalid handler name {name!r}")
        causes = frozenset(RootCause(cause) for cause in root_causes) if root_causes is not None else None
        entry = RegisteredHandler(
            name,
            dag_id,
            task_id,
            fn,
            description or (fn.__doc__ or "").strip().split("\n")[0],
            Risk(risk),
            causes,
            expected_duration_seconds,
        )
        with self._lock:
            self._handlers[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        """Forget the handler called ``name`` (no error if unknown)."""
        with self._lock:
            self._handlers.pop(name, None)

    def get(self, name: str) -> RegisteredHandler | None:
        """The handler called ``name``."""
        with self._lock:
            return self._handlers.get(name)

    def find(
        self, dag_id: str | None, task_id: str | None, root_cause: RootCause
    ) -> RegisteredHandler | None:
        """The handler for this task and cause: a task's own handler beats a DAG-wide one."""
        with self._lock:
            candidates = [h for h in self._handlers.values() if h.applies_to(dag_id, task_id, root_cause)]
        candidates.sort(key=lambda h: (h.task_id is None, h.name))
        return candidates[0] if candidates else None

    def run(self, args: RunHandlerArgs, checkpoints: CheckpointSource | None = None) -> ActionResult:
        """Run the registered handler ``args.handler`` for the task in ``args``.

        :param args: validated ``run-handler`` arguments
        :param checkpoints: source of the latest checkpoint (the ledger)
        """
        entry = self.get(args.handler)
        if entry is None:
            return ActionResult(False, f"no recovery handler named {args.handler!r} is registered")
        if entry.dag_id != args.dag_id or (entry.task_id is not None and entry.task_id != args.task_id):
            return ActionResult(False, f"handler {args.handler!r} is not registered for this task")
        context = HandlerContext(
            handler=entry.name,
            dag_id=args.dag_id,
            task_id=args.task_id,
            run_id=args.run_id,
            checkpoint=_checkpoint(checkpoints, args),
        )
        result = entry.fn(context)
        if isinstance(result, ActionResult):
            return result
        ok = result is None or result is True
        return ActionResult(ok, f"handler {entry.name} {'succeeded' if ok else 'reported failure'}")


def _check_ids(dag_id: str, task_id: str | None) -> None:
    if not AIRFLOW_KEY_RE.match(dag_id):
        raise ValueError(f"invalid dag_id {dag_id!r}")
    if task_id is not None and not AIRFLOW_KEY_RE.match(task_id):
        raise ValueError(f"invalid task_id {task_id!r}")


#: The task id of a DAG-wide checkpoint (the reference guide's ``record_checkpoint(plugin_name, state)``).
DAG_CHECKPOINT = "*"


def _checkpoint(checkpoints: CheckpointSource | None, args: RunHandlerArgs) -> dict[str, Any] | None:
    """The task's latest checkpoint in this run (any run), else the DAG-wide one."""
    if checkpoints is None:
        return None
    try:
        own = (
            checkpoints.latest_checkpoint(args.dag_id, args.task_id, args.run_id)
            if args.task_id is not None
            else None
        )
        return own if own is not None else checkpoints.latest_checkpoint(args.dag_id, DAG_CHECKPOINT)
    except Exception:
        log.warning("checkpoint of %s.%s unavailable", args.dag_id, args.task_id)
        return None
