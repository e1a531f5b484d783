"""The ledger's tables (SQLAlchemy Core).

Table names carry the ``qr_`` prefix so that the ledger can share a database with other software
without clashing. Every constraint and index has a name derived from :data:`NAMING_CONVENTION`, so
that the Alembic migrations in :mod:`qubinode_recovery_provider.store.migrations` and this metadata can
be compared (a test checks there is no difference).

Enumerations are stored as plain strings (their ``value``), datetimes always as UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.engine import Dialect

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as naive UTC
    (SQLAlchemy's fixed-width ISO text, which sorts and compares correctly) and come back aware.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


incidents = sa.Table(
    "qr_incidents",
    metadata,
    _id(),
    sa.Column("fingerprint", sa.String, nullable=False, unique=True),
    sa.Column("root_cause", sa.String, nullable=False),
    sa.Column("summary", sa.Text, nullable=False, default=""),
    sa.Column("state", sa.String, nullable=False, index=True),
    sa.Column("occurrences", sa.Integer, nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False, index=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # the UI's filters and its "seen most often" list (revision 0004)
    sa.Index("ix_qr_incidents_root_cause_last_seen", "root_cause", "last_seen"),
    sa.Index("ix_qr_incidents_occurrences", "occurrences"),
)

incident_dags = sa.Table(
    "qr_incident_dags",
    metadata,
    sa.Column(
        "incident_id", sa.Integer, sa.ForeignKey("qr_incidents.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("dag_id", sa.String, primary_key=True),
    sa.Index("ix_qr_incident_dags_dag_id", "dag_id"),
)

incident_hosts = sa.Table(
    "qr_incident_hosts",
    metadata,
    sa.Column(
        "incident_id", sa.Integer, sa.ForeignKey("qr_incidents.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("host", sa.String, primary_key=True),
)

diagnoses = sa.Table(
    "qr_diagnoses",
    metadata,
    _id(),
    sa.Column(
        "incident_id",
        sa.Integer,
        sa.ForeignKey("qr_incidents.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("fingerprint", sa.String, nullable=False, index=True),
    sa.Column("root_cause", sa.String, nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("severity", sa.String, nullable=False),
    sa.Column("retryable", sa.Boolean, nullable=True),
    sa.Column("primary_pattern", sa.String, nullable=True),
    sa.Column("dag_id", sa.String, nullable=True),
    sa.Column("task_id", sa.String, nullable=True),
    sa.Column("run_id", sa.String, nullable=True),
    sa.Column("try_number", sa.Integer, nullable=True),
    sa.Column("host", sa.String, nullable=True),
    sa.Column("occurred_at", UTCDateTime, nullable=False, index=True),
    sa.Column("diagnosis", sa.JSON, nullable=False),
    sa.Column("event", sa.JSON, nullable=False),
    # the task-instance view of the UI, and the unexplained failures of its pattern page (revision 0004)
    sa.Index("ix_qr_diagnoses_dag_task_run", "dag_id", "task_id", "run_id"),
    sa.Index("ix_qr_diagnoses_root_cause_occurred_at", "root_cause", "occurred_at"),
)

plans = sa.Table(
    "qr_plans",
    metadata,
    _id(),
    sa.Column("fingerprint", sa.String, nullable=False, index=True),
    sa.Column("root_cause", sa.String, nullable=False),
    sa.Column("recommended_type", sa.String, nullable=True),
    sa.Column("dag_id", sa.String, nullable=True),
    sa.Column("task_id", sa.String, nullable=True),
    sa.Column("run_id", sa.String, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False, index=True),
    sa.Column("plan", sa.JSON, nullable=False),
)

attempts = sa.Table(
    "qr_attempts",
    metadata,
    _id(),
    sa.Column("idempotency_key", sa.String, nullable=False, unique=True),
    sa.Column("fingerprint", sa.String, nullable=False, index=True),
    sa.Column("action", sa.String, nullable=False),
    sa.Column("action_args", sa.JSON, nullable=False),
    sa.Column("dry_run", sa.Boolean, nullable=False),
    sa.Column("outcome", sa.String, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("host", sa.String, nullable=True, index=True),
    sa.Column("started_at", UTCDateTime, nullable=False, index=True),
    sa.Column("finished_at", UTCDateTime, nullable=True),
)

checkpoints = sa.Table(
    "qr_checkpoints",
    metadata,
    _id(),
    sa.Column("dag_id", sa.String, nullable=False),
    sa.Column("task_id", sa.String, nullable=False),
    sa.Column("run_id", sa.String, nullable=False),
    sa.Column("host", sa.String, nullable=True),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("recorded_at", UTCDateTime, nullable=False, index=True),
    sa.Index("ix_qr_checkpoints_dag_task_run", "dag_id", "task_id", "run_id"),
)

escalation_outbox = sa.Table(
    "qr_escalation_outbox",
    metadata,
    _id(),
    sa.Column("fingerprint", sa.String, nullable=False, index=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("labels", sa.JSON, nullable=False),
    sa.Column("status", sa.String, nullable=False, index=True),
    sa.Column("reference", sa.Text, nullable=True),
    sa.Column("tries", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=True),
    sa.Column("kind", sa.String, nullable=False, server_default="escalate"),
    sa.Column("next_attempt_at", UTCDateTime, nullable=True),
)

#: One row per escalated fingerprint: its GitHub issue, the comment rate limit and the claim that lets
#: one outbox drain at a time deliver the fingerprint's entries.
escalation_issues = sa.Table(
    "qr_escalation_issues",
    metadata,
    _id(),
    sa.Column("fingerprint", sa.String, nullable=False, unique=True),
    sa.Column("number", sa.Integer, nullable=True),
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("state", sa.String, nullable=True),
    sa.Column("occurrences", sa.Integer, nullable=False, server_default="0"),
    sa.Column("unreported", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_context", sa.Text, nullable=True),
    sa.Column("last_comment_at", UTCDateTime, nullable=True),
    sa.Column("claimed_by", sa.String, nullable=True),
    sa.Column("claimed_until", UTCDateTime, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

shadow_errors = sa.Table(
    "qr_shadow_errors",
    metadata,
    _id(),
    sa.Column("dedup_hash", sa.String, nullable=False, unique=True),
    sa.Column("dedup_key", sa.Text, nullable=False),
    sa.Column("type", sa.String, nullable=False, index=True),
    sa.Column("dag_id", sa.String, nullable=True),
    sa.Column("run_id", sa.String, nullable=True),
    sa.Column("task_id", sa.String, nullable=True),
    sa.Column("resource", sa.String, nullable=True),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("severity", sa.String, nullable=False),
    sa.Column("seen_count", sa.Integer, nullable=False),
    sa.Column("first_seen", UTCDateTime, nullable=False),
    sa.Column("last_seen", UTCDateTime, nullable=False, index=True),
    sa.Column("finding", sa.JSON, nullable=False),
    # lifecycle: open -> acknowledged | resolved; back to open when the finding changes
    sa.Column("state", sa.String, nullable=False, server_default="open", index=True),
    sa.Column("state_changed_at", UTCDateTime, nullable=True),
    sa.Column("state_note", sa.Text, nullable=True),
    sa.Column("signature", sa.String, nullable=True),
    sa.Column("raise_count", sa.Integer, nullable=False, server_default="1"),
    sa.Column("last_raised", UTCDateTime, nullable=True),
    sa.Index("ix_qr_shadow_errors_dag_id", "dag_id"),
    sa.Index("ix_qr_shadow_errors_resource", "resource"),
)

scan_watermarks = sa.Table(
    "qr_scan_watermarks",
    metadata,
    sa.Column("source", sa.String, primary_key=True),
    sa.Column("position", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

applied_events = sa.Table(
    "qr_applied_events",
    metadata,
    sa.Column("event_id", sa.String, primary_key=True),
    sa.Column("op", sa.String, nullable=False),
    sa.Column("applied_at", UTCDateTime, nullable=False, index=True),
)
