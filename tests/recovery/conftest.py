"""Fixtures of the recovery tests: diagnoses per root cause, a real SQLite ledger, an isolated config
and a fresh API state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from recovery_helpers import RUN_ID, option_types  # noqa: F401  (re-exported for fixtures)
from recovery_workers import make_diagnosis

from qubinode_recovery_provider import api
from qubinode_recovery_provider.models import Diagnosis, Health
from qubinode_recovery_provider.recovery import (
    ActionResult,
    EventBus,
    RecoveryEvent,
    RetryFromFailureArgs,
    TaskConfig,
)
from qubinode_recovery_provider.store import Ledger


@pytest.fixture(autouse=True)
def fresh_api(isolated_config: None) -> Iterator[None]:
    """Every test here: its own configuration (:func:`isolated_config`) and a fresh API state."""
    api.reset()
    yield
    api.reset()


@pytest.fixture
def set_option(monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """Set one ``[qubinode_recovery]`` option through its environment variable."""

    def setter(option: str, value: str) -> None:
        monkeypatch.setenv(f"AIRFLOW__QUBINODE_RECOVERY__{option.upper()}", value)

    return setter


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """The real ledger on a SQLite file, migrated."""
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool", auto_flush_interval=0) as led:
        led.migrate()
        yield led


@pytest.fixture
def retried(ledger: Ledger) -> list[RetryFromFailureArgs]:
    """The API on the real ledger, with a ``retry-from-failure`` that records its calls and succeeds and a
    probe that says healthy; returns the recorded calls."""
    calls: list[RetryFromFailureArgs] = []

    def retry(args: RetryFromFailureArgs) -> ActionResult:
        calls.append(args)
        return ActionResult(True, "cleared")

    api.configure(ledger=ledger, retry=retry, probe=lambda name: Health.HEALTHY)
    return calls


@pytest.fixture
def diagnosis() -> Callable[..., Diagnosis]:
    """``diagnosis(root_cause, **fields)``: a diagnosis as the analyzer would make it."""
    return make_diagnosis


@pytest.fixture
def task() -> TaskConfig:
    return TaskConfig(
        dag_id="build_vm", task_id="create_vm", run_id=RUN_ID, try_number=1, execution_timeout_seconds=600
    )


@pytest.fixture
def bus() -> EventBus:
    return EventBus()


@pytest.fixture
def events(bus: EventBus) -> list[RecoveryEvent]:
    """Every event emitted on ``bus``."""
    seen: list[RecoveryEvent] = []
    bus.subscribe("*", seen.append)
    return seen
