"""Per-DAG and per-task recovery handlers, with checkpoints from the real ledger."""

from __future__ import annotations

from typing import Any

import pytest

from qubinode_recovery_provider.models import Risk, RootCause
from qubinode_recovery_provider.recovery import (
    RUN_HANDLER,
    ActionResult,
    HandlerContext,
    HandlerRegistry,
    RunHandlerArgs,
    build_default_registry,
)
from qubinode_recovery_provider.store import Ledger


def test_register_as_decorator_and_as_call() -> None:
    handlers = HandlerRegistry()

    @handlers.register("build_vm", "create_vm")
    def delete_vm(ctx: HandlerContext) -> bool:
        """Delete the half-built VM."""
        return True

    handlers.register("build_vm", None, lambda ctx: True, name="dag_wide", risk="high")

    entry = handlers.get("build_vm.create_vm.delete_vm")
    assert entry is not None
    assert entry.fn is delete_vm
    assert entry.description == "Delete the half-built VM."
    assert entry.risk is Risk.MEDIUM
    assert handlers.get("dag_wide").risk is Risk.HIGH  # type: ignore[union-attr]


def test_a_task_handler_beats_a_dag_wide_one() -> None:
    handlers = HandlerRegistry()
    handlers.register("build_vm", None, lambda ctx: True, name="dag_wide")
    handlers.register("build_vm", "create_vm", lambda ctx: True, name="task_own")
    handlers.register("build_vm", "create_vm", lambda ctx: True, name="storage_only", root_causes=["storage"])

    assert handlers.find("build_vm", "create_vm", RootCause.NETWORK).name == "task_own"  # type: ignore[union-attr]
    assert handlers.find("build_vm", "other", RootCause.NETWORK).name == "dag_wide"  # type: ignore[union-attr]
    assert handlers.find("other_dag", "create_vm", RootCause.NETWORK) is None
    handlers.unregister("task_own")
    assert handlers.find("build_vm", "create_vm", RootCause.STORAGE).name == "storage_only"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("dag_id", "task_id", "name"),
    [("bad dag", None, None), ("d", "t;x", None), ("d", "t", "rm -rf /")],
)
def test_ids_and_names_are_validated(dag_id: str, task_id: str | None, name: str | None) -> None:
    with pytest.raises(ValueError, match="invalid"):
        HandlerRegistry().register(dag_id, task_id, lambda ctx: True, name=name)


def test_the_handler_receives_the_latest_checkpoint(ledger: Ledger) -> None:
    seen: list[HandlerContext] = []
    handlers = HandlerRegistry()
    handlers.register("build_vm", "create_vm", lambda ctx: seen.append(ctx) or True, name="undo")
    ledger.record_checkpoint("build_vm", "create_vm", "run1", {"vm_name": "web1", "step": 1})
    ledger.record_checkpoint("build_vm", "create_vm", "run1", {"vm_name": "web1", "step": 2})
    registry = build_default_registry(handlers=handlers, checkpoints=ledger)

    result = registry.run(
        RUN_HANDLER, {"handler": "undo", "dag_id": "build_vm", "task_id": "create_vm", "run_id": "run1"}
    )

    assert result.succeeded
    assert seen[0].checkpoint == {"vm_name": "web1", "step": 2}
    assert (seen[0].dag_id, seen[0].task_id, seen[0].run_id) == ("build_vm", "create_vm", "run1")


def test_only_registered_handlers_of_that_task_run() -> None:
    calls: list[Any] = []
    handlers = HandlerRegistry()
    handlers.register("build_vm", "create_vm", calls.append, name="undo")

    unknown = handlers.run(RunHandlerArgs(handler="other", dag_id="build_vm", task_id="create_vm"))
    wrong_task = handlers.run(RunHandlerArgs(handler="undo", dag_id="build_vm", task_id="configure_vm"))

    assert not unknown.succeeded
    assert "no recovery handler named 'other'" in unknown.detail
    assert not wrong_task.succeeded
    assert "not registered for this task" in wrong_task.detail
    assert calls == []


def test_handler_results() -> None:
    handlers = HandlerRegistry()
    handlers.register("d", "t", lambda ctx: False, name="no")
    handlers.register("d", "t", lambda ctx: ActionResult(True, "removed web1"), name="custom")
    assert not handlers.run(RunHandlerArgs(handler="no", dag_id="d", task_id="t")).succeeded
    assert handlers.run(RunHandlerArgs(handler="custom", dag_id="d", task_id="t")).detail == "removed web1"
