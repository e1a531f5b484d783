"""Airflow itself discovers the provider and its configuration section (real ``airflow`` commands)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from support import processes

from qubinode_recovery_provider import config
from qubinode_recovery_provider.get_provider_info import get_provider_info

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    home = tmp_path_factory.mktemp("airflow_home")
    return {**os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}


def _airflow(env: dict[str, str], *args: str) -> str:
    proc = processes.run([AIRFLOW, *args], env=env, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_provider_info_is_valid_against_airflows_schema() -> None:
    import jsonschema
    from airflow import settings  # noqa: F401  (makes the schema path importable)

    schema_path = Path(sys.modules["airflow"].__file__).with_name("provider_info.schema.json")
    jsonschema.validate(get_provider_info(), json.loads(schema_path.read_text()))
    assert get_provider_info()["package-name"] == "qubinode-recovery-provider"


def test_airflow_lists_the_provider(airflow_env: dict[str, str]) -> None:
    rows = json.loads(_airflow(airflow_env, "providers", "list", "-o", "json"))
    ours = [r for r in rows if r["package_name"] == "qubinode-recovery-provider"]
    assert len(ours) == 1
    assert ours[0]["version"] == "0.1.0"


def test_config_section_shows_every_option_with_its_description(airflow_env: dict[str, str]) -> None:
    out = _airflow(airflow_env, "config", "list", "--section", "qubinode_recovery", "--include-descriptions")
    for name, option in config.OPTIONS.items():
        assert f"# {name} = " in out
        assert option.description.split(".")[0] in out


def test_airflow_and_the_plain_reader_agree_on_values(airflow_env: dict[str, str]) -> None:
    env = {**airflow_env, "AIRFLOW__QUBINODE_RECOVERY__BREAKER_MAX_ATTEMPTS": "5"}
    assert _airflow(env, "config", "get-value", "qubinode_recovery", "breaker_max_attempts").strip() == "5"
    assert _airflow(
        airflow_env, "config", "get-value", "qubinode_recovery", "min_auto_confidence"
    ).strip() == (config.OPTIONS["min_auto_confidence"].default)


def test_configuration_page_is_up_to_date() -> None:
    root = Path(__file__).resolve().parent.parent
    proc = processes.run([sys.executable, "scripts/gen_config_doc.py", "--check"], cwd=root, timeout=120)
    assert proc.returncode == 0, "docs/configuration.md is stale: run python scripts/gen_config_doc.py"
