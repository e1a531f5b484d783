"""Fixtures of the notifier tests: an isolated configuration with a SQLite ledger in ``tmp_path``."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from qubinode_recovery_provider import config


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Ledger, spool and outbox under ``tmp_path``; no API connection; no probes unless a test asks."""
    for name in list(os.environ):
        if name.startswith(("AIRFLOW__QUBINODE_RECOVERY__", "AIRFLOW_CONN_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path / "logs"))
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__SYSTEMD_UNITS", "")
    config.clear_cache()
    yield
    config.clear_cache()


@pytest.fixture(autouse=True, scope="session")
def warm_analyzer() -> None:
    """Load the pattern library once before the first test: the fault tests give the notifier budgets of
    1-2 s and check what a fault does to them, not the one-time load of a fresh process (measured in
    ``bench/bench_notifier.py``)."""
    from qubinode_recovery_provider import task_failure

    task_failure.shared_analyzer().analyze("warm-up")
