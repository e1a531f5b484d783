"""One runtime per process: built once, shared by what derives from it, changed only where asked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from qubinode_recovery_provider import api, runtime
from qubinode_recovery_provider.models import Risk
from qubinode_recovery_provider.recovery.actions import RETRY_FROM_FAILURE, ActionResult, RetryFromFailureArgs
from qubinode_recovery_provider.store import Ledger

ARGS = RetryFromFailureArgs(dag_id="build_vm", run_id="r1", task_ids=["create_vm"])


class _Note(BaseModel):
    text: str = ""


@pytest.fixture(autouse=True)
def fresh_runtime(isolated_config: None) -> Iterator[None]:
    runtime.reset()
    yield
    runtime.reset()


def _cleared(args: BaseModel) -> ActionResult:
    return ActionResult(True, "cleared")


def test_the_process_has_one_runtime_until_reset() -> None:
    first = runtime.current()
    assert runtime.current() is first
    assert first.analyzer is runtime.current().analyzer  # the pattern library is loaded once
    runtime.reset()
    assert runtime.current() is not first


def test_a_derived_runtime_shares_state_and_leaves_the_process_runtime_unchanged(tmp_path: Path) -> None:
    process = runtime.current()
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool") as ledger:
        process.ledger = ledger
        process.auto_override = False
        derived = process.with_retry(_cleared)

        assert derived.ledger is ledger
        assert derived.handlers is process.handlers
        assert derived.policy().auto_recovery_enabled is False
        assert derived.registry.run(RETRY_FROM_FAILURE, ARGS).succeeded is True
        assert process.registry.get(RETRY_FROM_FAILURE).enabled is False  # still not configured
        assert derived.analyzer is process.analyzer


def test_an_added_action_survives_a_rebuilt_registry_and_reaches_derived_runtimes() -> None:
    api.register_action("note", lambda args: ActionResult(True, "noted"), _Note, Risk.LOW)
    api.configure(restart_enabled=True)  # rebuilds the registry
    assert api.get_action_registry().run("note", _Note()).detail == "noted"
    assert runtime.current().with_retry(None).registry.run("note", _Note()).succeeded is True


def test_the_failure_ledger_is_one_per_url(tmp_path: Path) -> None:
    rt = runtime.current()
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    first = rt.failure_ledger(url, 1.0)
    assert rt.failure_ledger(url, 2.0) is first
    assert rt.failure_ledger(f"sqlite:///{tmp_path / 'other.db'}", 1.0) is not first


def test_a_derived_runtime_keeps_waiting_disabled_and_only_an_off_switch() -> None:
    api.configure(probe=None)  # "None disables waiting"
    api.set_auto_recovery_enabled(True)
    derived = runtime.current().with_retry(_cleared)
    assert derived.registry.get("wait-for-service").enabled is False
    assert derived.policy().auto_recovery_enabled == runtime.Runtime().policy().auto_recovery_enabled
    api.set_auto_recovery_enabled(False)
    assert runtime.current().with_retry(_cleared).policy().auto_recovery_enabled is False
