"""Fixtures of the notifier tests: an isolated configuration with a SQLite ledger in ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def config_env(tmp_path: Path) -> dict[str, str]:
    """Ledger, spool and outbox under ``tmp_path``; no probes unless a test asks."""
    return {
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(tmp_path / "logs"),
        "AIRFLOW__QUBINODE_RECOVERY__STATE_DIR": str(tmp_path / "state"),
        "AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL": f"sqlite:///{tmp_path / 'ledger.db'}",
        "AIRFLOW__QUBINODE_RECOVERY__SYSTEMD_UNITS": "",
    }


@pytest.fixture(autouse=True)
def _isolated(isolated_config: None) -> None:
    """Every test here runs with its own configuration (:func:`isolated_config`, ``config_env`` above):
    no API connection from the environment."""


@pytest.fixture(autouse=True, scope="session")
def warm_analyzer() -> None:
    """Load the pattern library once before the first test: the fault tests give the notifier budgets of
    1-2 s and check what a fault does to them, not the one-time load of a fresh process (measured in
    ``bench/bench_notifier.py``)."""
    from qubinode_recovery_provider.utils import task_failure

    task_failure.shared_analyzer().analyze("warm-up")
