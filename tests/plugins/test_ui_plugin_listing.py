"""``airflow plugins`` lists the recovery UI plugin in a fresh Airflow home (entry point discovery)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.airflow_harness import new_home

pytestmark = pytest.mark.integration


def test_airflow_plugins_lists_the_recovery_ui(tmp_path: Path) -> None:
    home = new_home(tmp_path)
    result = home.airflow("plugins", "--output", "json", timeout=180)
    assert result.returncode == 0, result.stdout[-3000:]
    listed = json.loads(result.stdout[result.stdout.index("[{") :])
    (ours,) = [p for p in listed if p["name"] == "qubinode_recovery"]
    assert ours["fastapi_apps"][0]["url_prefix"] == "/qubinode-recovery"
    destinations = {view["destination"]: view for view in ours["external_views"]}
    assert destinations["nav"]["href"] == "/qubinode-recovery/incidents"
    assert "{DAG_ID}" in destinations["task_instance"]["href"]
    assert "qubinode-recovery-provider" in ours["source"]
