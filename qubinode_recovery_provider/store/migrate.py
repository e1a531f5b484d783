"""Schema migrations of the ledger, run programmatically with Alembic (no ``alembic.ini`` needed).

:func:`upgrade` is safe to call from many processes at once: on SQLite the whole upgrade runs inside
one ``BEGIN IMMEDIATE`` transaction (the database write lock), on PostgreSQL under a transaction-level
advisory lock, and Alembic re-reads the current revision once the lock is held. Migrations only ever
add to the schema or transform rows in place, so stored incidents survive every upgrade.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from qubinode_recovery_provider.store.engine import READ_OPTION

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection, Engine

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
VERSION_TABLE = "qr_alembic_version"
#: pg_advisory_xact_lock key serialising concurrent upgrades ("qubi" in ASCII).
PG_LOCK_KEY = 0x71756269
#: The newest packaged revision. Kept here so that a process whose ledger is already current never
#: imports Alembic (about 0.3 s in a fresh task process); a test checks it equals Alembic's head.
HEAD_REVISION = "0004"


def alembic_config(connection: Connection | None = None, script_location: Path | None = None) -> Config:
    """An Alembic configuration pointing at the packaged migrations (or ``script_location``)."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(script_location or MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


@lru_cache(maxsize=8)
def head_revision(script_location: Path | None = None) -> str | None:
    """The newest revision shipped with the package (or found in ``script_location``)."""
    if script_location is None:
        return HEAD_REVISION
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(script_location=script_location)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect().execution_options(**{READ_OPTION: True}) as conn:
        return _current(conn)


def _current(conn: Connection) -> str | None:
    """The version table's revision, read with plain SQL (None when the table does not exist yet)."""
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()  # noqa: S608


def upgrade(engine: Engine, revision: str = "head", script_location: Path | None = None) -> bool:
    """Bring the schema to ``revision``; returns False when it was already there.

    Cheap when nothing is to do: one read of the version table, no lock.
    """
    target = head_revision(script_location) if revision == "head" else revision
    if current_revision(engine) == target:
        return False
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            return _upgrade_sqlite(conn, target, revision, script_location)
        with conn.begin():
            conn.execute(sa.text("SET LOCAL lock_timeout = '120s'"))
            conn.execute(sa.text("SET LOCAL statement_timeout = 0"))
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK_KEY})
            return _run(conn, target, revision, script_location)


def _upgrade_sqlite(
    conn: Connection, target: str | None, revision: str, script_location: Path | None
) -> bool:
    """SQLite alters a table by copying it and dropping the original: with foreign keys enforced, the
    drop would cascade to (delete) the rows that reference it. So foreign keys are off during the
    migration (the pragma only works outside a transaction) and checked before the commit."""
    raw = conn.connection.driver_connection
    if raw is None:  # pragma: no cover - a pooled connection always has one
        raise RuntimeError("no sqlite3 connection")
    raw.execute("PRAGMA foreign_keys = OFF")
    try:
        with conn.begin():
            changed = _run(conn, target, revision, script_location)
            problems = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise RuntimeError(f"migration to {target} broke foreign keys: {problems[:5]}")
        return changed
    finally:
        raw.execute("PRAGMA foreign_keys = ON")


def _run(conn: Connection, target: str | None, revision: str, script_location: Path | None) -> bool:
    """Inside the migration lock: upgrade unless another process has just done it."""
    from alembic import command

    if _current(conn) == target:
        return False
    command.upgrade(alembic_config(conn, script_location), revision)
    return True
