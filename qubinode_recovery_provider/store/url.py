"""Where the ledger lives: ``ledger_url``, else the Airflow connection ``ledger_conn_id``, else a SQLite
file in the provider's state directory."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from qubinode_recovery_provider import config
from qubinode_recovery_provider.store.engine import LedgerURLError

LEDGER_FILE = "ledger.db"
SPOOL_DIR = "spool"
_PG_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"}


def default_sqlite_url(state_dir: Path | None = None) -> str:
    """``sqlite:///<state_dir>/ledger.db``."""
    return f"sqlite:///{(state_dir or config.state_dir()) / LEDGER_FILE}"


def default_spool_dir() -> Path:
    return config.state_dir() / SPOOL_DIR


def resolve_ledger_url() -> str:
    """The configured ledger URL: ``ledger_url``, else ``ledger_conn_id`` (needs Airflow), else the
    SQLite default."""
    url = config.get("ledger_url").strip()
    if url:
        return url
    conn_id = config.get("ledger_conn_id").strip()
    if conn_id:
        return url_from_connection(conn_id)
    return default_sqlite_url()


def url_from_connection(conn_id: str) -> str:
    """Resolve an Airflow connection to a SQLAlchemy URL (imports Airflow, only here).

    :raises LedgerURLError: when Airflow is not importable or the connection does not exist.
    """
    try:
        from airflow.sdk import BaseHook
    except ImportError as exc:
        raise LedgerURLError(
            f"ledger_conn_id={conn_id!r} needs Airflow to resolve; set ledger_url or pass --ledger"
        ) from exc
    try:
        connection = BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise LedgerURLError(f"cannot read Airflow connection {conn_id!r}: {exc}") from exc
    if connection.conn_type == "sqlite" and connection.host:
        return f"sqlite:///{connection.host}"
    return sqlalchemy_url_from_uri(connection.get_uri())


def sqlalchemy_url_from_uri(uri: str) -> str:
    """Turn an Airflow connection URI into a SQLAlchemy URL: ``postgres://`` becomes
    ``postgresql+psycopg://`` and Airflow's ``__extra__`` query parameter is dropped."""
    scheme, sep, rest = uri.partition("://")
    if scheme.lower() in _PG_SCHEMES:
        scheme = "postgresql+psycopg"
    base, question, query = rest.partition("?")
    if question:
        kept = urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "__extra__"])
        rest = f"{base}?{kept}" if kept else base
    return f"{scheme}{sep}{rest}"
