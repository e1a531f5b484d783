"""``qubinode-recovery dags install``: the two DAG files in a DAGs folder, idempotent, version-checked,
never overwriting an edited file without ``--force``; a real Airflow lists both DAGs from them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support import processes
from support.airflow_harness import deployment_env, migrated_db

from qubinode_recovery_provider import __version__
from qubinode_recovery_provider.cli import main
from qubinode_recovery_provider.cli.dags import DAG_MODULES, default_dags_folder, render

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(processes.__file__).resolve().parents[2] / ".venv" / "bin" / "airflow")
DAG_IDS = sorted(DAG_MODULES)


def install(capsys: pytest.CaptureFixture[str], folder: Path, *flags: str) -> tuple[int, dict, str]:
    code = main(["dags", "install", "--dags-folder", str(folder), "--json", *flags])
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out else {}), err


def actions(report: dict) -> list[str]:
    return [row["action"] for row in report["files"]]


def test_a_fresh_install_writes_both_files_and_a_second_run_changes_nothing(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    code, report, _ = install(capsys, folder)
    assert code == 0
    assert actions(report) == ["installed", "installed"]
    assert sorted(p.stem for p in folder.glob("*.py")) == DAG_IDS
    before = {p.name: p.read_text() for p in folder.iterdir()}
    assert install(capsys, folder)[1]["files"] == [
        {"dag_id": d, "path": str(folder / f"{d}.py"), "action": "unchanged", "reason": ""}
        for d in DAG_MODULES
    ]
    assert {p.name: p.read_text() for p in folder.iterdir()} == before  # no temporary file left either


def test_a_file_of_an_older_version_is_updated(capsys, tmp_path: Path) -> None:
    old = tmp_path / "qubinode_failure_recovery.py"
    old.write_text(render("qubinode_failure_recovery", version="0.0.1"))
    code, report, _ = install(capsys, tmp_path)
    assert code == 0
    assert report["files"][0]["action"] == "updated"
    assert report["files"][0]["reason"] == "from version 0.0.1"
    assert old.read_text() == render("qubinode_failure_recovery")
    assert f"version {__version__}," in old.read_text().splitlines()[0]


@pytest.mark.parametrize(
    ("existing", "reason"),
    [
        (lambda text: text + "\n# my own change\n", "edited since version"),
        (
            lambda text: "from airflow.sdk import DAG  # someone else's dag file\n",
            "not written by dags install",
        ),
        (lambda text: render("qubinode_shadow_scan", version="99.0"), "written by a newer provider (99.0)"),
    ],
    ids=["edited", "foreign", "newer"],
)
def test_an_edited_foreign_or_newer_file_is_refused_unless_forced(
    capsys, tmp_path: Path, existing, reason
) -> None:
    path = tmp_path / "qubinode_shadow_scan.py"
    text = existing(render("qubinode_shadow_scan"))
    path.write_text(text)
    code, report, _ = install(capsys, tmp_path)
    assert code == 1
    refused = report["files"][1]
    assert refused["action"] == "refused"
    assert reason in refused["reason"]
    assert "--force" in refused["reason"]
    assert path.read_text() == text
    assert report["files"][0]["action"] == "installed"  # the other file is still installed

    code, report, _ = install(capsys, tmp_path, "--force")
    assert code == 0
    assert report["files"][1]["action"] == "overwritten"
    assert path.read_text() == render("qubinode_shadow_scan")


def test_the_text_output_is_one_line_per_file(capsys, tmp_path: Path) -> None:
    assert main(["dags", "install", "--dags-folder", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"installed   {tmp_path / d}.py" for d in DAG_MODULES]


@pytest.mark.parametrize("kind", ["file", "no_parent"])
def test_an_unusable_folder_is_one_line_and_exit_2(capsys, tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "a_file"
    if kind == "file":
        folder.write_text("x")
    else:
        folder = tmp_path / "missing" / "dags"
    assert main(["dags", "install", "--dags-folder", str(folder)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert str(folder) in err


def test_the_default_folder_is_airflows_dags_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    assert default_dags_folder({"AIRFLOW_HOME": str(home)}) == home / "dags"
    (home / "airflow.cfg").write_text("[core]\ndags_folder = {AIRFLOW_HOME}/my_dags\n")
    assert default_dags_folder({"AIRFLOW_HOME": str(home)}) == home / "my_dags"
    env = {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(tmp_path / "env_dags")}
    assert default_dags_folder(env) == tmp_path / "env_dags"


def test_the_default_folder_is_used_without_the_flag(capsys, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("AIRFLOW__CORE__DAGS_FOLDER", raising=False)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    assert main(["dags", "install"]) == 0
    capsys.readouterr()
    assert sorted(p.stem for p in (tmp_path / "dags").glob("*.py")) == DAG_IDS


def test_the_repositorys_dag_files_are_what_dags_install_writes() -> None:
    # dags/ of this repository is `qubinode-recovery dags install --dags-folder dags` (re-run it after a
    # version change): the compose stack mounts these files
    for dag_id in DAG_MODULES:
        assert (ROOT / "dags" / f"{dag_id}.py").read_text() == render(dag_id)


def test_airflow_lists_both_dags_from_an_installed_folder(capsys, tmp_path: Path) -> None:
    home, dags = tmp_path / "home", tmp_path / "dags"
    home.mkdir()
    shutil.copy(migrated_db(), home / "airflow.db")
    assert install(capsys, dags)[0] == 0
    env = deployment_env(home, dags)
    listed = processes.run([AIRFLOW, "dags", "list", "--local", "-o", "json"], env=env, timeout=240)
    assert listed.returncode == 0, listed.stderr[-3000:]
    rows = json.loads(listed.stdout.strip().splitlines()[-1])  # after Airflow's warnings
    assert sorted(row["dag_id"] for row in rows) == DAG_IDS
    assert {Path(row["fileloc"]).parent for row in rows} == {dags}
    errors = processes.run(
        [AIRFLOW, "dags", "list-import-errors", "--local", "-o", "json"], env=env, timeout=240
    )
    assert errors.returncode == 0, errors.stderr[-3000:]
    assert json.loads(errors.stdout.strip().splitlines()[-1]) == []
