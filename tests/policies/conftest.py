"""Fixtures of the retry policy tests: an isolated configuration."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from qubinode_recovery_provider import config


@pytest.fixture(autouse=True)
def isolated_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No provider options from the environment; logs under ``tmp_path/logs``."""
    for name in list(os.environ):
        if name.startswith("AIRFLOW__QUBINODE_RECOVERY__"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path / "logs"))
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__STATE_DIR", str(tmp_path / "state"))
    # the decisions are under test here, not the time bound (its own tests set a small budget): a first
    # decision loads the pattern library, which on a loaded 2-core machine can outlast the 1 s default
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__POLICY_BUDGET_SECONDS", "60")
    config.clear_cache()
    yield
    config.clear_cache()
