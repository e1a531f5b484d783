"""docs/quickstart.md, run: every ``bash`` block's commands in order in a fresh AIRFLOW_HOME (the
``export`` of the ledger URL pointed at a local PostgreSQL database), the ``python`` block saved as the
DAG file it names; the ``pip install`` line is checked, not run (the provider is installed already)."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from support import processes
from support.airflow_harness import deployment_env, migrated_db

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "quickstart.md"
BIN = Path(sys.executable).parent
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.M | re.S)


def blocks(kind: str) -> list[str]:
    return [body for info, body in BLOCK.findall(DOC.read_text(encoding="utf-8")) if info == kind]


def commands() -> list[list[str]]:
    return [shlex.split(line) for body in blocks("bash") for line in body.splitlines() if line.strip()]


def test_the_pip_line_names_extras_that_exist() -> None:
    (pip,) = [argv for argv in commands() if argv[0] == "pip"]
    match = re.fullmatch(r"qubinode-recovery-provider\[([\w,-]+)\]", pip[2])
    assert pip[:2] == ["pip", "install"]
    assert match
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    assert set(match.group(1).split(",")) <= set(parser["options.extras_require"])


@pytest.fixture(scope="module")
def walk(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    home = tmp_path_factory.mktemp("quickstart") / "airflow"
    home.mkdir()
    shutil.copy(migrated_db(), home / "airflow.db")
    env = deployment_env(home, home / "dags")
    del env["AIRFLOW__CORE__DAGS_FOLDER"]  # Airflow's default, $AIRFLOW_HOME/dags: dags install finds it
    ledger_db = f"quickstart_{uuid.uuid4().hex[:8]}"
    results: list[tuple[list[str], Any]] = []
    with pg_server.janitor(ledger_db):
        for argv in commands():
            if argv[0] == "pip":
                continue
            if argv[0] == "export":
                name, value = argv[1].split("=", 1)
                url = make_url(value).set(host=pg_server.host, port=pg_server.port, username=pg_server.user)
                env[name] = url.set(password=None, database=ledger_db).render_as_string(hide_password=False)
                continue
            if argv[:3] == ["airflow", "dags", "test"]:
                (dag,) = blocks("python")
                target = home / "dags" / dag.splitlines()[0].removeprefix("# ").split(",")[0]
                target.write_text(dag, encoding="utf-8")
            done = processes.run([str(BIN / argv[0]), *argv[1:]], env=env, timeout=300)
            results.append((argv, done))
        yield {"home": home, "results": results, "env": env}


def result(walk: dict[str, Any], *prefix: str) -> Any:
    return next(done for argv, done in walk["results"] if argv[: len(prefix)] == list(prefix))


def test_every_command_but_the_dag_test_succeeds(walk) -> None:
    assert len(walk["results"]) == 8
    for argv, done in walk["results"]:
        if argv[:3] != ["airflow", "dags", "test"]:
            assert done.returncode == 0, (argv, (done.stdout + done.stderr)[-3000:])


def test_airflow_finds_the_provider(walk) -> None:
    assert "qubinode-recovery-provider" in result(walk, "airflow", "providers", "get").stdout


def test_the_dags_land_in_airflows_dags_folder_without_import_errors(walk) -> None:
    assert sorted(p.name for p in (walk["home"] / "dags").glob("qubinode_*.py")) == [
        "qubinode_failure_recovery.py",
        "qubinode_shadow_scan.py",
    ]
    assert "qubinode" not in result(walk, "airflow", "dags", "list-import-errors").stdout
    assert "installed" in result(walk, "qubinode-recovery", "dags", "install").stdout


def test_the_ledger_is_migrated_on_postgresql(walk) -> None:
    out = result(walk, "qubinode-recovery", "ledger", "migrate").stdout
    assert out.startswith("ledger postgresql+psycopg://")
    assert out.strip().endswith(": migrated")


def test_the_failed_task_is_failed_fast_and_its_incident_recorded(walk) -> None:
    done = result(walk, "airflow", "dags", "test")
    output = done.stdout + done.stderr
    assert re.search(r"Retry policy decision.*action=\W*fail", output), output[-3000:]
    listed = processes.run(
        [str(BIN / "qubinode-recovery"), "incidents", "list", "--json"], env=walk["env"], timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["dag_ids"], r["root_cause"], r["occurrences"]) for r in rows] == [
        (["my_vm_build"], "credential", 1)
    ]
    assert "my_vm_build" in result(walk, "qubinode-recovery", "incidents", "list").stdout
