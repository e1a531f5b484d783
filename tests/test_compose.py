"""``docker-compose.yaml``: valid against the Compose Specification's JSON schema, consistent with itself
and with docs/compose.md, every option it sets a real one, and its Airflow configuration run here as
processes (no Docker engine runs on these machines): the scheduler's environment with the hosts pointed
at a local PostgreSQL, Airflow's database and the ledger migrated, the mounted DAGs parsed.

The schema is the one ``check-jsonschema`` ships (``vendor.compose-spec``, its copy of
https://github.com/compose-spec/compose-spec/blob/main/schema/compose-spec.json).
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from sqlalchemy.engine import make_url
from support import processes

from qubinode_recovery_provider import config

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yaml"
DOC = ROOT / "docs" / "compose.md"
BIN = Path(sys.executable).parent
AIRFLOW_SERVICES = {
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
    "airflow-init",
}
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")
CONTAINER_HOME = "/opt/airflow"


def load() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))  # PyYAML merges the `<<` anchors


def volume_source(volume: str) -> str:
    """The source of a short-syntax volume (``SOURCE:TARGET[:ro]``; SOURCE may hold ``${VAR:-x}``)."""
    match = re.match(r"^(.+?):(/[^:]*)(?::(?:ro|rw))?$", volume)
    assert match, volume
    return match.group(1)


def schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads(vendor.joinpath("compose-spec.json").read_text(encoding="utf-8"))


def interpolate(value: Any) -> str:
    """Compose's ``${VAR:-default}`` with nothing set in the environment, and ``$$`` as ``$``."""
    return INTERPOLATION.sub(lambda m: m.group(2) or "", str(value)).replace("$$", "$")


def environment(service: str) -> dict[str, str]:
    return {k: interpolate(v) for k, v in load()["services"][service]["environment"].items()}


# --- the file on its own -------------------------------------------------------------------------


def test_the_file_is_valid_against_the_compose_specification() -> None:
    validator = jsonschema.Draft202012Validator(schema())
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(load())]
    assert errors == []


def test_the_schema_check_catches_a_broken_file() -> None:
    broken = copy.deepcopy(load())
    broken["services"]["redis"]["healthcheck"]["test"] = {"cmd": "redis-cli ping"}
    broken["services"]["postgres"]["no_such_key"] = True
    messages = [e.message for e in jsonschema.Draft202012Validator(schema()).iter_errors(broken)]
    assert any("'no_such_key' was unexpected" in m for m in messages)
    assert any("{'cmd': 'redis-cli ping'}" in m for m in messages)


def test_the_stack_has_every_part_the_issue_names() -> None:
    services = load()["services"]
    assert AIRFLOW_SERVICES | {"postgres", "redis", "marquez-api", "marquez-web"} == set(services)
    commands = {name: services[name].get("command") for name in AIRFLOW_SERVICES - {"airflow-init"}}
    assert commands == {
        "airflow-apiserver": "api-server",
        "airflow-scheduler": "scheduler",
        "airflow-dag-processor": "dag-processor",
        "airflow-worker": "celery worker",
        "airflow-triggerer": "triggerer",
    }
    for name in AIRFLOW_SERVICES:
        assert services[name]["build"]["dockerfile"] == "compose/Dockerfile"
        assert environment(name)["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    init = services["airflow-init"]["command"][1]
    assert "airflow db migrate" in init
    assert "qubinode-recovery ledger migrate" in init
    assert "/docker-entrypoint-initdb.d/" in " ".join(services["postgres"]["volumes"])


def test_every_depends_on_condition_can_be_met() -> None:
    services = load()["services"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}'s missing healthcheck"
            else:
                assert rule["condition"] == "service_completed_successfully"
                assert "restart" not in services[target], f"{name} waits for {target} to exit"
    for name in services.keys() - {"airflow-init"}:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


def test_the_dockerfile_builds_from_airflow_3_3_and_installs_this_repository() -> None:
    text = (ROOT / "compose" / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^ARG AIRFLOW_IMAGE=apache/airflow:3\.3\.\d+-python3\.11$", text, re.M)
    assert "COPY --chown=airflow:0 . /opt/qubinode-recovery-provider" in text
    assert '"/opt/qubinode-recovery-provider[libvirt,postgres,openlineage,github,airflow-client]"' in text
    assert not re.search(r"(?i)(password|token|secret)\s*=", text)


def test_the_bind_mounts_exist_in_the_repository() -> None:
    for service in load()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


def test_the_provider_options_are_ours_and_the_connections_parse() -> None:
    env = environment("airflow-scheduler")
    ours = {k.split("__", 2)[2].lower() for k in env if k.startswith("AIRFLOW__QUBINODE_RECOVERY__")}
    assert ours >= {"ledger_url", "marquez_url", "recovery_conn_id", "libvirt_conn_ids"}
    assert ours <= set(config.OPTIONS)
    assert make_url(env["AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL"]).database == "qubinode_ledger"
    api = json.loads(env["AIRFLOW_CONN_AIRFLOW_API"])
    assert (api["conn_type"], api["host"], api["port"]) == ("airflow_api", "airflow-apiserver", 8080)
    assert json.loads(env["AIRFLOW_CONN_LIBVIRT_DEFAULT"])["extra"]["uri"] == "test:///default"
    transport = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert transport["url"] == env["AIRFLOW__QUBINODE_RECOVERY__MARQUEZ_URL"] == "http://marquez-api:5000"


def test_the_init_script_creates_the_databases_the_stack_uses() -> None:
    sql = (ROOT / "compose" / "postgres" / "init-databases.sql").read_text(encoding="utf-8")
    created = set(re.findall(r"CREATE DATABASE (\w+)", sql))
    ledger = make_url(environment("airflow-scheduler")["AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL"])
    assert created == {ledger.database, load()["services"]["marquez-api"]["environment"]["POSTGRES_DB"]}


# --- the docs against the file -------------------------------------------------------------------


def doc_table(heading: str) -> list[list[str]]:
    """The rows of the first table under ``heading`` in docs/compose.md, cells without backticks."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")][2:]
    return [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows]


def test_the_docs_services_are_the_files_services_with_their_ports() -> None:
    services = load()["services"]
    rows = doc_table("Services")
    assert {row[0] for row in rows} == set(services)
    for name, port, *_ in rows:
        published = {p.split(":")[0] for p in services[name].get("ports", [])}
        assert published == ({port} if port not in {"", "-"} else set()), name


def test_the_docs_volumes_exist_and_every_volume_is_documented() -> None:
    compose = load()
    rows = doc_table("Volumes")
    named = set(compose["volumes"])
    mounted = {volume_source(v) for s in compose["services"].values() for v in s.get("volumes", [])}
    documented = {row[0] for row in rows}
    assert documented <= named | mounted
    assert named <= documented


def test_every_variable_and_port_the_docs_name_is_in_the_file() -> None:
    text = DOC.read_text(encoding="utf-8")
    compose_text = COMPOSE.read_text(encoding="utf-8")
    variables = set(re.findall(r"\b(?:_?AIRFLOW|QUBINODE)_[A-Z0-9_]+\b", text))
    assert {"AIRFLOW__OPENLINEAGE__TRANSPORT", "QUBINODE_LIBVIRT_RUN_DIR"} <= variables
    assert sorted(v for v in variables if v not in compose_text) == []
    published = {p.split(":")[0] for s in load()["services"].values() for p in s.get("ports", [])}
    assert set(re.findall(r"localhost:(\d+)", text)) <= published


# --- the configuration, run ----------------------------------------------------------------------


def local_env(pg: Any, home: Path, dags: Path, metadata_db: str, ledger_db: str) -> dict[str, str]:
    """The scheduler's environment from the file, PostgreSQL and paths rewritten to local ones."""
    env = environment("airflow-scheduler")
    env = {k: v.replace(CONTAINER_HOME, str(home)) for k, v in env.items()}

    def local(url: str, database: str) -> str:
        parsed = make_url(url).set(host=pg.host, port=pg.port, username=pg.user, password=None)
        return parsed.set(database=database).render_as_string(hide_password=False)

    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = local(
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], metadata_db
    )
    backend = env["AIRFLOW__CELERY__RESULT_BACKEND"].removeprefix("db+")
    env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + local(backend, metadata_db)
    ledger = env["AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL"]
    env["AIRFLOW__QUBINODE_RECOVERY__LEDGER_URL"] = local(ledger, ledger_db)
    env["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)
    base = {k: v for k, v in processes.child_env()[0].items() if not k.startswith("AIRFLOW")}
    return {**base, **env, "AIRFLOW_HOME": str(home), "PATH": f"{BIN}:{base.get('PATH', '')}"}


def mount(home: Path) -> None:
    """The scheduler's bind mounts of repository files, copied to where they land under ``home``."""
    for volume in load()["services"]["airflow-scheduler"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            destination = Path(target.replace(CONTAINER_HOME, str(home)))
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, destination)


OPTION_PROBE = """
import json, sys
from airflow.configuration import conf
conf.load_providers_configuration()
known = conf.configuration_description
names = [n for n in json.loads(sys.argv[1]) if n.count("__") >= 2]
missing = []
for name in names:
    section, key = name.split("__", 2)[1:]
    options = known.get(section.lower(), {}).get("options", {})
    if key.lower() not in options:
        missing.append(name)
print(json.dumps(missing))
"""


@pytest.fixture(scope="module")
def stack(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("compose")
    home = base / "opt_airflow"
    home.mkdir()
    mount(home)
    metadata_db, ledger_db = f"airflow_{uuid.uuid4().hex[:8]}", f"ledger_{uuid.uuid4().hex[:8]}"
    with pg_server.janitor(metadata_db), pg_server.janitor(ledger_db):
        env = local_env(pg_server, home, home / "dags", metadata_db, ledger_db)

        def run(*argv: str, timeout: float = 240) -> processes.subprocess.CompletedProcess[str]:
            return processes.run(list(argv), env=env, timeout=timeout)

        results = {
            "migrate": run(str(BIN / "airflow"), "db", "migrate", timeout=400),
            "ledger": run(str(BIN / "qubinode-recovery"), "ledger", "migrate", "--json"),
            "ledger_again": run(str(BIN / "qubinode-recovery"), "ledger", "migrate", "--json"),
            "dags": run(str(BIN / "airflow"), "dags", "list", "--local", "-o", "json"),
            "errors": run(str(BIN / "airflow"), "dags", "list-import-errors", "--local", "-o", "json"),
            "marquez": run(str(BIN / "airflow"), "config", "get-value", "qubinode_recovery", "marquez_url"),
            "options": run(sys.executable, "-c", OPTION_PROBE, json.dumps(sorted(env))),
        }
        yield {"env": env, "home": home, **results}


def last_json(done: Any) -> Any:
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_airflows_database_migrates_on_the_configured_postgresql(stack) -> None:
    assert stack["migrate"].returncode == 0, (stack["migrate"].stdout + stack["migrate"].stderr)[-4000:]


def test_the_ledger_migrates_into_its_own_database_once(stack) -> None:
    first, again = last_json(stack["ledger"]), last_json(stack["ledger_again"])
    assert first["migrated"] is True
    assert again["migrated"] is False
    assert make_url(first["ledger"]).database.startswith("ledger_")


def test_the_mounted_dags_import_without_errors(stack) -> None:
    rows = last_json(stack["dags"])
    assert sorted(row["dag_id"] for row in rows) == ["qubinode_failure_recovery", "qubinode_shadow_scan"]
    assert last_json(stack["errors"]) == []


def test_airflow_reads_the_providers_options_from_the_environment(stack) -> None:
    assert stack["marquez"].returncode == 0, stack["marquez"].stderr[-2000:]
    assert stack["marquez"].stdout.strip().splitlines()[-1] == "http://marquez-api:5000"


def test_every_airflow_option_the_file_sets_is_a_real_option(stack) -> None:
    assert last_json(stack["options"]) == []
    set_options = [k for k in stack["env"] if k.startswith("AIRFLOW__")]
    assert len(set_options) >= 20
