"""Fixtures of the CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from qubinode_recovery_provider import config


@pytest.fixture
def isolated_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No airflow.cfg, ledger or scan sources from the environment running the tests."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    for option in ("STATE_DIR", "LEDGER_URL", "LEDGER_CONN_ID", "LINEAGE_FILE", "MARQUEZ_URL"):
        monkeypatch.delenv(f"AIRFLOW__QUBINODE_RECOVERY__{option}", raising=False)
    config.clear_cache()
