"""Fixtures of the recovery tests: diagnoses per root cause, a real SQLite ledger, an isolated config."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from recovery_helpers import RUN_ID, option_types  # noqa: F401  (re-exported for fixtures)
from recovery_workers import make_diagnosis

from qubinode_recovery_provider import api, config
from qubinode_recovery_provider.models import Diagnosis
from qubinode_recovery_provider.recovery import EventBus, RecoveryEvent, TaskConfig
from qubinode_recovery_provider.store import Ledger


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No airflow.cfg and no ``AIRFLOW__QUBINODE_RECOVERY__*`` from the environment; a fresh API state."""
    import os

    for name in list(os.environ):
        if name.startswith("AIRFLOW__QUBINODE_RECOVERY__"):
            monkeypatch.delenv(name)
    home = tmp_path / "airflow_home"
    home.mkdir()
    monkeypatch.setenv("AIRFLOW_HOME", str(home))
    monkeypatch.delenv("AIRFLOW_CONFIG", raising=False)
    config.clear_cache()
    api.reset()
    yield
    api.reset()
    config.clear_cache()


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
