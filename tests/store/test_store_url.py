"""Where the ledger lives: ledger_url, ledger_conn_id (an Airflow connection) or SQLite in state_dir."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support import processes

from qubinode_recovery_provider import config
from qubinode_recovery_provider.store import Ledger, LedgerURLError, resolve_ledger_url
from qubinode_recovery_provider.store.url import sqlalchemy_url_from_uri, url_from_connection

ENV = "AIRFLOW__QUBINODE_RECOVERY__"
pytestmark = pytest.mark.usefixtures("isolated_config")


def _python(code: str, env: dict[str, str]) -> processes.Completed:
    return processes.run([sys.executable, "-c", code], env=env, timeout=120)


def test_default_is_sqlite_in_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = tmp_path / "airflow_home" / "qubinode_recovery" / "ledger.db"
    assert resolve_ledger_url() == f"sqlite:///{default}"
    monkeypatch.setenv(ENV + "STATE_DIR", str(tmp_path / "state"))
    assert resolve_ledger_url() == f"sqlite:///{tmp_path / 'state' / 'ledger.db'}"
    ledger = Ledger.from_config(migrate=False)
    assert ledger.spool.directory == tmp_path / "state" / "spool"


def test_airflow_cfg_section_is_read(tmp_path: Path) -> None:
    home = tmp_path / "airflow_home"
    home.mkdir()
    (home / "airflow.cfg").write_text("[qubinode_recovery]\nledger_url = sqlite:////srv/ledger.db\n")
    config.clear_cache()
    assert resolve_ledger_url() == "sqlite:////srv/ledger.db"


def test_ledger_url_overrides_conn_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV + "LEDGER_CONN_ID", "qubinode_ledger")
    monkeypatch.setenv(ENV + "LEDGER_URL", "postgresql+psycopg://u@db/ledger")
    assert resolve_ledger_url() == "postgresql+psycopg://u@db/ledger"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("postgres://user:pw@db.example:5432/ledger", "postgresql+psycopg://user:pw@db.example:5432/ledger"),
        (
            "postgresql://u@h/db?sslmode=require&__extra__=%7B%7D",
            "postgresql+psycopg://u@h/db?sslmode=require",
        ),
        ("sqlite:////var/lib/ledger.db", "sqlite:////var/lib/ledger.db"),
    ],
)
def test_airflow_uris_become_sqlalchemy_urls(uri: str, expected: str) -> None:
    assert sqlalchemy_url_from_uri(uri) == expected


def test_conn_id_is_resolved_through_airflow(tmp_path: Path) -> None:
    """A real Airflow connection (from the environment secrets backend), resolved lazily."""
    code = "from qubinode_recovery_provider.store import resolve_ledger_url; print(resolve_ledger_url())"
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "home"),
        ENV + "LEDGER_CONN_ID": "qubinode_ledger",
        "AIRFLOW_CONN_QUBINODE_LEDGER": "postgres://ledger:s3cret@db.internal:5433/qubinode",
    }
    env.pop(ENV + "LEDGER_URL", None)
    result = _python(code, env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        result.stdout.strip().splitlines()[-1]
        == "postgresql+psycopg://ledger:s3cret@db.internal:5433/qubinode"
    )


def test_missing_connection_is_a_url_error(tmp_path: Path) -> None:
    code = (
        "from qubinode_recovery_provider.store.url import url_from_connection\n"
        "from qubinode_recovery_provider.store import LedgerURLError\n"
        "try:\n    url_from_connection('no_such_conn')\nexcept LedgerURLError as e:\n    print('ERR', e)\n"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "home")}
    result = _python(code, env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ERR cannot read Airflow connection 'no_such_conn'" in result.stdout


def test_without_airflow_conn_id_is_a_url_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "airflow.sdk", None)  # import fails as if Airflow were absent
    with pytest.raises(LedgerURLError, match="needs Airflow"):
        url_from_connection("qubinode_ledger")
