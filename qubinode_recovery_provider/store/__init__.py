"""The ledger (SQLAlchemy 2): incidents keyed by fingerprint with every diagnosis, plan and recovery
attempt, checkpoints, an escalation outbox and shadow findings, in SQLite (default) or PostgreSQL.

Plain Python: importing this package never imports Airflow (only resolving ``ledger_conn_id`` does).
"""

from __future__ import annotations

from qubinode_recovery_provider.store.engine import LedgerError, LedgerUnavailable, LedgerURLError
from qubinode_recovery_provider.store.ledger import Ledger
from qubinode_recovery_provider.store.migrate import head_revision
from qubinode_recovery_provider.store.url import default_sqlite_url, resolve_ledger_url

__all__ = [
    "Ledger",
    "LedgerError",
    "LedgerURLError",
    "LedgerUnavailable",
    "default_sqlite_url",
    "head_revision",
    "resolve_ledger_url",
]
