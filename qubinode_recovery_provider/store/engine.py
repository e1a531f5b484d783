"""Engines for the two supported backends, and the line between "the database is unavailable" and
"the program is wrong".

SQLite: WAL journal, ``busy_timeout`` and ``BEGIN IMMEDIATE`` for every write transaction, so
concurrent writers queue on the database lock instead of failing half-way. PostgreSQL (psycopg 3):
``connect_timeout``, ``lock_timeout`` and ``statement_timeout`` so that a locked or hung server turns
into a quick error the ledger can spool, and ``pool_pre_ping`` so a restarted server is reconnected.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine

from qubinode_recovery_provider.files import create_private_file, make_private

READ_OPTION = "qubinode_ledger_read"
SUPPORTED_BACKENDS = ("sqlite", "postgresql")


class LedgerError(Exception):
    """Base class of the ledger's own errors."""


class LedgerUnavailable(LedgerError):
    """The ledger database is locked or unreachable and the operation cannot be buffered (reads,
    :meth:`~qubinode_recovery_provider.store.Ledger.begin_attempt`)."""


class LedgerURLError(LedgerError, ValueError):
    """The ledger URL is malformed, names an unsupported database, or cannot be resolved."""


def normalize_url(url: str | URL) -> URL:
    """Parse ``url`` and pick the psycopg 3 driver for PostgreSQL URLs without an explicit driver.

    :raises LedgerURLError: when the URL cannot be parsed or names an unsupported backend.
    """
    try:
        parsed = sa.make_url(url) if isinstance(url, str) else url
    except (sa_exc.ArgumentError, ValueError) as exc:
        raise LedgerURLError(f"not a database URL: {_safe(url)!r}") from exc
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        raise LedgerURLError(
            f"unsupported ledger database {parsed.get_backend_name()!r} (use sqlite or postgresql)"
        )
    return parsed


def _safe(url: str | URL) -> str:
    return url.render_as_string(hide_password=True) if isinstance(url, URL) else str(url)


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL, or None for an in-memory database."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database)


def create_ledger_engine(url: URL, timeout: float) -> Engine:
    """An engine for ``url`` whose lock and connect waits are bounded by ``timeout`` seconds."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, timeout)
    return _postgresql_engine(url, timeout)


def _sqlite_engine(url: URL, timeout: float) -> Engine:
    path = sqlite_path(url)
    if path is not None:
        # the ledger holds log tails: 0600 in a 0700 directory (SQLite gives its -wal/-shm files the
        # database file's mode). A directory that cannot be created shows up as "unable to open database
        # file" on connect, an unavailable ledger like any other.
        with contextlib.suppress(OSError):
            create_private_file(path)
            for suffix in ("-wal", "-shm", "-journal"):
                make_private(path.with_name(path.name + suffix))
    engine = sa.create_engine(url, connect_args={"timeout": timeout})
    busy_ms = int(timeout * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (see _on_begin)
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if path is not None:
                cursor.execute("PRAGMA journal_mode = WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        read = conn.get_execution_options().get(READ_OPTION, False)
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

    return engine


def _postgresql_engine(url: URL, timeout: float) -> Engine:
    lock_ms = max(1, int(timeout * 1000))
    statement_ms = max(30_000, lock_ms * 4)
    connect_args = {
        "connect_timeout": max(1, math.ceil(timeout)),
        "options": f"-c lock_timeout={lock_ms} -c statement_timeout={statement_ms}",
        "application_name": "qubinode-recovery-ledger",
    }
    return sa.create_engine(url, pool_pre_ping=True, connect_args=connect_args)


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` means the database is locked, down or unreachable (worth buffering and
    retrying later), False for errors a retry cannot fix (constraint violations, bad SQL)."""
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return True
    return isinstance(exc, sa_exc.DBAPIError) and bool(exc.connection_invalidated)
