"""The escalation outbox's delivery side: which entries are due, who delivers a fingerprint, and the
GitHub issue each escalated fingerprint has.

Statements :class:`~.ledger.Ledger` runs directly on a connection (they need an answer, so they are never
spooled). The claim is a lease on the fingerprint's ``qr_escalation_issues`` row: one conditional
``UPDATE`` that only succeeds when nobody else holds an unexpired lease. Both backends make it exclusive:
SQLite runs one writer at a time, and PostgreSQL re-checks the ``WHERE`` of an ``UPDATE`` that waited for
another transaction's row lock against the row that transaction committed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict

import sqlalchemy as sa

from qubinode_recovery_provider.store import ops, queries
from qubinode_recovery_provider.store import schema as t

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

    from qubinode_recovery_provider.store.queries import EscalationEntry

#: Columns of ``qr_escalation_issues`` a delivery may set.
ISSUE_FIELDS = frozenset(
    {"number", "url", "state", "occurrences", "unreported", "last_context", "last_comment_at"}
)


class IssueRecord(TypedDict):
    """What the ledger knows of a fingerprint's GitHub issue (:meth:`Ledger.escalation_issue`)."""

    fingerprint: str
    number: int | None
    url: str | None
    state: str | None
    occurrences: int
    unreported: int
    last_context: str | None
    last_comment_at: datetime | None


def claim(conn: Connection, fingerprint: str, owner: str, now: datetime, lease_seconds: float) -> bool:
    """Take the delivery lease of ``fingerprint`` for ``owner``; False when someone else holds it."""
    table = t.escalation_issues
    conn.execute(
        ops.upsert(conn, table)
        .values(fingerprint=fingerprint, occurrences=0, unreported=0, updated_at=now)
        .on_conflict_do_nothing(index_elements=["fingerprint"])
    )
    free = sa.or_(table.c.claimed_until.is_(None), table.c.claimed_until < now, table.c.claimed_by == owner)
    stmt = (
        table.update()
        .where(table.c.fingerprint == fingerprint, free)
        .values(claimed_by=owner, claimed_until=now + timedelta(seconds=lease_seconds))
    )
    return bool(conn.execute(stmt).rowcount == 1)


def release(conn: Connection, fingerprint: str, owner: str) -> None:
    """Give the lease of ``fingerprint`` back (nothing happens when ``owner`` no longer holds it)."""
    table = t.escalation_issues
    conn.execute(
        table.update()
        .where(table.c.fingerprint == fingerprint, table.c.claimed_by == owner)
        .values(claimed_by=None, claimed_until=None)
    )


def issue(conn: Connection, fingerprint: str) -> IssueRecord | None:
    """The fingerprint's issue record, or None when it was never escalated to GitHub."""
    row = conn.execute(
        sa.select(t.escalation_issues).where(t.escalation_issues.c.fingerprint == fingerprint)
    ).first()
    return _issue(row) if row is not None else None


def update_issue(
    conn: Connection, fingerprint: str, owner: str, now: datetime, values: dict[str, Any]
) -> bool:
    """Set ``values`` on the fingerprint's issue record while ``owner`` holds its lease; False otherwise."""
    unknown = set(values) - ISSUE_FIELDS
    if unknown:
        raise ValueError(f"not an issue field: {sorted(unknown)}")
    table = t.escalation_issues
    stmt = (
        table.update()
        .where(table.c.fingerprint == fingerprint, table.c.claimed_by == owner)
        .values(**values, updated_at=now)
    )
    return bool(conn.execute(stmt).rowcount == 1)


def due(conn: Connection, now: datetime, limit: int, fingerprint: str | None = None) -> list[EscalationEntry]:
    """The pending entries whose retry time has come (only ``fingerprint``'s when given), oldest first."""
    table = t.escalation_outbox
    query = (
        sa.select(table)
        .where(
            table.c.status == "pending",
            sa.or_(table.c.next_attempt_at.is_(None), table.c.next_attempt_at <= now),
        )
        .order_by(table.c.id)
        .limit(limit)
    )
    if fingerprint is not None:
        query = query.where(table.c.fingerprint == fingerprint)
    return [queries.outbox_entry(row) for row in conn.execute(query)]


def summaries_due(conn: Connection, cutoff: datetime, limit: int) -> list[str]:
    """Fingerprints with occurrences not reported on their open issue, last commented before ``cutoff``."""
    table = t.escalation_issues
    query = (
        sa.select(table.c.fingerprint)
        .where(
            table.c.unreported > 0,
            table.c.number.is_not(None),
            sa.or_(table.c.last_comment_at.is_(None), table.c.last_comment_at <= cutoff),
        )
        .order_by(table.c.id)
        .limit(limit)
    )
    return [str(row.fingerprint) for row in conn.execute(query)]


def retry_later(conn: Connection, outbox_id: int, error: str, next_attempt_at: datetime) -> int:
    """Count a failed delivery of a pending entry and set when to try it again."""
    table = t.escalation_outbox
    stmt = (
        table.update()
        .where(table.c.id == outbox_id, table.c.status == "pending")
        .values(tries=table.c.tries + 1, last_error=error[:4000], next_attempt_at=next_attempt_at)
    )
    return int(conn.execute(stmt).rowcount)


def entry(conn: Connection, outbox_id: int) -> EscalationEntry | None:
    """The outbox entry ``outbox_id``."""
    row = conn.execute(sa.select(t.escalation_outbox).where(t.escalation_outbox.c.id == outbox_id)).first()
    return queries.outbox_entry(row) if row is not None else None


def issue_url(conn: Connection, fingerprint: str) -> str | None:
    """The URL of the fingerprint's GitHub issue, when it has one."""
    table = t.escalation_issues
    return conn.execute(sa.select(table.c.url).where(table.c.fingerprint == fingerprint)).scalar()


def _issue(row: Row[Any]) -> IssueRecord:
    return {
        "fingerprint": row.fingerprint,
        "number": row.number,
        "url": row.url,
        "state": row.state,
        "occurrences": int(row.occurrences or 0),
        "unreported": int(row.unreported or 0),
        "last_context": row.last_context,
        "last_comment_at": row.last_comment_at,
    }
