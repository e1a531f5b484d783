"""Fixtures of the retry policy tests: an isolated configuration."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def config_env(tmp_path: Path) -> dict[str, str]:
    """Logs under ``tmp_path/logs``, state under ``tmp_path/state``."""
    return {
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(tmp_path / "logs"),
        "AIRFLOW__QUBINODE_RECOVERY__STATE_DIR": str(tmp_path / "state"),
        # the decisions are under test here, not the time bound (its own tests set a small budget): a
        # first decision loads the pattern library, which on a loaded 2-core machine can outlast the 1 s
        # default
        "AIRFLOW__QUBINODE_RECOVERY__POLICY_BUDGET_SECONDS": "60",
    }


@pytest.fixture(autouse=True)
def _isolated(isolated_config: None) -> None:
    """Every test here runs with its own configuration (:func:`isolated_config`, ``config_env`` above)."""
