"""The public Python API (the seed's hook names) for code outside Airflow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from qubinode_recovery_provider import api
from qubinode_recovery_provider.models import AttemptOutcome, FailureEvent, Risk, RootCause
from qubinode_recovery_provider.recovery import (
    FAILURE_DIAGNOSED,
    RECOVERY_EXECUTED,
    RECOVERY_PLAN_CREATED,
    HandlerContext,
    RecoveryEvent,
    RetryFromFailureArgs,
    TaskConfig,
)
from qubinode_recovery_provider.store import Ledger

RUN_ID = "manual__2025-01-01T00:00:00+00:00"
NETWORK_ERROR = "curl: (56) Recv failure: Connection reset by peer"
LIBVIRT_DOWN = "error: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory"


def test_the_seed_hook_names_exist() -> None:
    for name in (
        "diagnose_failure",
        "plan_recovery",
        "execute_recovery",
        "record_checkpoint",
        "register_recovery_handler",
        "set_auto_recovery_enabled",
        "set_approval_callback",
    ):
        assert callable(getattr(api, name)), name


def event(text: str) -> FailureEvent:
    return FailureEvent(dag_id="build_vm", task_id="create_vm", run_id=RUN_ID, exception_text=text)


def test_diagnose_plan_execute(retried: list[RetryFromFailureArgs], ledger: Ledger) -> None:
    seen: list[RecoveryEvent] = []
    unsubscribe = api.subscribe("*", seen.append)

    diagnosis = api.diagnose_failure(event(LIBVIRT_DOWN))
    plan = api.plan_recovery(diagnosis)
    attempt = api.execute_recovery(plan, host="kvm-01")

    assert diagnosis.root_cause is RootCause.SERVICE_DEPENDENCY
    assert plan.options[0].action == "wait-for-service"
    assert attempt.outcome is AttemptOutcome.SUCCEEDED
    assert [a.task_ids for a in retried] == [["create_vm"]]
    assert [e.name for e in seen] == [FAILURE_DIAGNOSED, RECOVERY_PLAN_CREATED, RECOVERY_EXECUTED]
    assert ledger.action_outcomes(diagnosis.fingerprint, "wait-for-service") == (1, 0)
    unsubscribe()
    api.plan_recovery(diagnosis)
    assert len(seen) == 3


def test_process_switch_and_dry_run(retried: list[RetryFromFailureArgs]) -> None:
    plan = api.plan_recovery(api.diagnose_failure(event(LIBVIRT_DOWN)))

    api.set_auto_recovery_enabled(False)
    assert api.execute_recovery(plan).outcome is AttemptOutcome.SKIPPED
    api.set_auto_recovery_enabled(None)
    assert api.execute_recovery(plan, dry_run=True).outcome is AttemptOutcome.DRY_RUN
    assert api.execute_recovery(plan, dag_auto_recovery=False).outcome is AttemptOutcome.SKIPPED
    off_by_tag = TaskConfig(tags=["infra", "qubinode_auto_recovery:off"])
    off_by_param = TaskConfig(params={"qubinode_auto_recovery": False})
    assert api.execute_recovery(plan, off_by_tag).outcome is AttemptOutcome.SKIPPED
    assert api.execute_recovery(plan, off_by_param).outcome is AttemptOutcome.SKIPPED
    assert retried == []


def test_switched_on_in_process_although_the_config_says_off(
    retried: list[RetryFromFailureArgs], set_option: Callable[[str, str], None]
) -> None:
    set_option("auto_recovery_enabled", "false")
    plan = api.plan_recovery(api.diagnose_failure(event(LIBVIRT_DOWN)))
    assert api.execute_recovery(plan).outcome is AttemptOutcome.SKIPPED
    api.set_auto_recovery_enabled(True)
    assert api.execute_recovery(plan).outcome is AttemptOutcome.SUCCEEDED


def test_handlers_checkpoints_and_the_approval_callback(
    retried: list[RetryFromFailureArgs], ledger: Ledger
) -> None:
    undone: list[HandlerContext] = []

    @api.register_recovery_handler("build_vm", "create_vm", risk=Risk.MEDIUM)
    def delete_vm(ctx: HandlerContext) -> bool:
        """Delete the half-built VM."""
        undone.append(ctx)
        return True

    api.record_checkpoint("build_vm", "create_vm", RUN_ID, {"vm_name": "web1"})
    diagnosis = api.diagnose_failure(
        event("error: operation failed: domain 'web1' already exists with uuid x")
    )
    plan = api.plan_recovery(diagnosis, TaskConfig(dag_id="build_vm", task_id="create_vm", run_id=RUN_ID))
    assert plan.options[0].action == "run-handler"

    blocked = api.execute_recovery(plan)
    assert blocked.outcome is AttemptOutcome.BLOCKED
    assert "awaiting approval" in blocked.detail

    asked: list[list[str]] = []
    api.set_approval_callback(lambda plan, option, reasons: asked.append(reasons) or True)
    done = api.execute_recovery(plan)

    assert done.outcome is AttemptOutcome.SUCCEEDED
    assert asked == [["risk medium is above the approval threshold low"]]
    assert undone[0].checkpoint == {"vm_name": "web1"}


def test_register_action(ledger: Ledger) -> None:
    class Args(BaseModel):
        pool: str

    calls: list[Any] = []
    api.configure(ledger=ledger)
    spec = api.register_action("start-pool", lambda args: calls.append(args.pool) or True, Args, Risk.LOW)
    assert spec.name in api.get_action_registry()
    api.configure(restart_enabled=True)  # rebuilding the registry keeps the user's actions
    assert api.get_action_registry().run("start-pool", {"pool": "default"}).succeeded
    assert calls == ["default"]
    assert "restart-service" in api.get_action_registry().enabled_names()


def test_without_implementations_nothing_is_automatic(ledger: Ledger) -> None:
    api.configure(ledger=ledger, probe=None)
    plan = api.plan_recovery(api.diagnose_failure(event(NETWORK_ERROR)))
    assert all(not option.automatic for option in plan.options)
    attempt = api.execute_recovery(plan)
    assert attempt.action == "escalate"


def test_the_default_ledger_is_the_configured_one(
    set_option: Callable[[str, str], None], tmp_path: Path
) -> None:
    set_option("state_dir", str(tmp_path / "state"))
    api.record_checkpoint("d", "t", "r", {"a": 1})
    assert api.get_ledger().latest_checkpoint("d", "t") == {"a": 1}
    assert (tmp_path / "state").is_dir()
