"""Fixtures of the reference guide's examples: an isolated configuration, a fresh API state and a real
SQLite ledger."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qubinode_recovery_provider import api
from qubinode_recovery_provider.store import Ledger


@pytest.fixture(autouse=True)
def fresh_api(isolated_config: None) -> Iterator[None]:
    """Every test here: its own configuration and a fresh API state (runtime, handlers, subscribers)."""
    api.reset()
    yield
    api.reset()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """The real ledger on a SQLite file, migrated, used by the API."""
    with Ledger(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path / "spool", auto_flush_interval=0) as led:
        led.migrate()
        api.configure(ledger=led)
        yield led
