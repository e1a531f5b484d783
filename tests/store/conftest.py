"""Fixtures of the store tests: every ledger test runs on SQLite and on the real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qubinode_recovery_provider.store import Ledger


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty ledger database: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def spool_dir(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def ledger(ledger_url: str, spool_dir: Path) -> Iterator[Ledger]:
    """A migrated ledger without automatic spool replay."""
    with Ledger(ledger_url, spool_dir, auto_flush_interval=0) as led:
        led.migrate()
        yield led
