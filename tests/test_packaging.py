"""The built wheel carries everything the provider reads at run time, and registers with Airflow."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

from support import processes

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_the_packs_the_calibration_the_model_the_migrations_and_the_entry_points(
    tmp_path: Path,
) -> None:
    proc = processes.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("qubinode_recovery_provider-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    packs = {Path(n).name for n in names if n.startswith("qubinode_recovery_provider/diagnosis/packs/")}
    assert packs == {p.name for p in (ROOT / "qubinode_recovery_provider/diagnosis/packs").glob("*.yaml")}
    assert "qubinode_recovery_provider/diagnosis/calibration.json" in names
    assert "qubinode_recovery_provider/diagnosis/text_model.bin.gz" in names
    assert "qubinode_recovery_provider/store/migrations/versions/0001_initial.py" in names
    assert "qubinode_recovery_provider/store/migrations/script.py.mako" in names
    assert not [n for n in names if n.startswith(("tests/", "bench/", "dags/"))]
    entry_points = next(
        zipfile.ZipFile(wheel).read(n).decode() for n in names if n.endswith("entry_points.txt")
    )
    assert "[apache_airflow_provider]" in entry_points
    assert "provider_info = qubinode_recovery_provider.get_provider_info:get_provider_info" in entry_points
    assert "qubinode-recovery = qubinode_recovery_provider.cli:console_main" in entry_points
