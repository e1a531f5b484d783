"""``qubinode-recovery detect-shadows``, the reference guide's name of ``scan``: its example 4 run as
written (sources from the configuration), and ``--scan-hours N`` equal to ``scan --since Nh``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from shadow_fakes import AirflowApiServer, serve
from shadow_site import LAB_XML, REAL_EVENTS
from test_cli_scan import _no_configured_sources, _rest_json, configure_sources  # noqa: F401  (autouse fixture)

from qubinode_recovery_provider.cli import main


def _ended(rest: dict[str, Any], ago: dict[str, timedelta]) -> dict[str, Any]:
    """The recorded runs, each ended ``ago[dag_id]`` before now (the others dropped)."""
    now = datetime.now(UTC)
    runs = [
        dict(r, end_date=(now - ago[r["dag_id"]]).isoformat()) for r in rest["dag_runs"] if r["dag_id"] in ago
    ]
    return {**rest, "dag_runs": runs}


def test_example_4_runs_as_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rest = _ended(
        _rest_json(),
        {"example_kcli_deploy_db": timedelta(minutes=20), "example_kcli_snapshot_lab": timedelta(hours=3)},
    )
    api = AirflowApiServer(rest["dag_runs"], rest["task_instances"], {"example_kcli_start_cache": {}})
    with serve(api.handle) as served:
        configure_sources(monkeypatch, served.url, "libvirt_lab")
        code = main(["detect-shadows", "--scan-hours", "1"])

    out, err = capsys.readouterr()
    assert code == 1, err
    assert "vm_not_created" in out
    assert "example_kcli_deploy_db" in out
    assert "example_kcli_snapshot_lab" not in out  # ended three hours ago: outside the last hour


def test_scan_hours_is_scan_since_hours(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rest = _ended(
        _rest_json(),
        {"example_kcli_deploy_db": timedelta(hours=5), "example_kcli_snapshot_lab": timedelta(hours=7)},
    )
    runs_file = tmp_path / "runs.json"
    runs_file.write_text(json.dumps(rest))
    sources = [
        "--runs-file",
        str(runs_file),
        "--lineage-file",
        str(REAL_EVENTS),
        "--libvirt-uri",
        f"lab=test://{LAB_XML}",
    ]
    results = []
    for argv in (["detect-shadows", "--scan-hours", "6"], ["scan", "--since", "6h"]):
        code = main([*argv, *sources, "--json"])
        out, _ = capsys.readouterr()
        results.append((code, sorted((f["type"], f["dag_id"]) for f in map(json.loads, out.splitlines()))))
    assert results[0] == results[1] == (1, [("vm_not_created", "example_kcli_deploy_db")])
