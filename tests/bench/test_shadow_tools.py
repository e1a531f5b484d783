"""The shadow-scan measuring tools run on a small estate: per-part CPU as the scan runs them, the
alternation of code trees, and the timeline of one scan (their figures are not asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("estate")
    small = ["--runs", "40", "--events", "400", "--domains", "20", "--hosts", "2"]
    _run(BENCH / "estate.py", str(directory), *small)
    return directory


def _run(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=True, timeout=120
    )


def test_the_parts_as_the_scan_runs_them(estate: Path) -> None:
    result = json.loads(_run(BENCH / "shadow_phases.py", str(estate), "--as-scan", "--repeats", "1").stdout)
    parts = result["cpu_s_best"]
    assert {"check", "runs", "lineage", "worker_to_bytes", "parent_merge", "detect_cold", "resume_gc"} <= set(
        parts
    )
    expected = json.loads((estate / "expected.json").read_text())
    for kind, count in result["findings_without_inventory"].items():
        assert expected[kind] == count  # (the VM findings need the listings, which this leaves out)


def test_the_alternation_of_code_trees_checks_the_findings(estate: Path) -> None:
    report = json.loads(_run(BENCH / "shadow_alternate.py", str(estate), "1", str(ROOT)).stdout)
    assert report[str(ROOT)]["correct"] is True
    assert report[str(ROOT)]["cpu_s_median"] > 0


def test_the_timeline_of_one_scan(estate: Path) -> None:
    steps = _run(BENCH / "shadow_timeline.py", str(estate)).stderr
    for step in ("imported", "check_runs_file start", "ShadowErrorDetector.detect end", "main returned 1"):
        assert step in steps
