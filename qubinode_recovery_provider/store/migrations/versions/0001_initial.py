"""Initial ledger schema: incidents, diagnoses, plans, attempts, checkpoints, escalation outbox,
shadow findings and the applied-event log of the spool.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=f"pk_{table}")


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, autoincrement=True, nullable=False)


def _index(table: str, *columns: str) -> None:
    op.create_index(f"ix_{table}_{'_'.join(columns)}", table, list(columns))


def _member_table(name: str, column: str) -> None:
    op.create_table(
        name,
        sa.Column("incident_id", sa.Integer, nullable=False),
        sa.Column(column, sa.String, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["qr_incidents.id"],
            name=f"fk_{name}_incident_id_qr_incidents",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", column, name=f"pk_{name}"),
    )


def _incidents() -> None:
    op.create_table(
        "qr_incidents",
        _id(),
        sa.Column("fingerprint", sa.String, nullable=False),
        sa.Column("root_cause", sa.String, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("state", sa.String, nullable=False),
        sa.Column("occurrences", sa.Integer, nullable=False),
        sa.Column("first_seen", TZ, nullable=False),
        sa.Column("last_seen", TZ, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        _pk("qr_incidents"),
        sa.UniqueConstraint("fingerprint", name="uq_qr_incidents_fingerprint"),
    )
    _index("qr_incidents", "state")
    _index("qr_incidents", "last_seen")
    _member_table("qr_incident_dags", "dag_id")
    _member_table("qr_incident_hosts", "host")


def _diagnoses() -> None:
    op.create_table(
        "qr_diagnoses",
        _id(),
        sa.Column("incident_id", sa.Integer, nullable=False),
        sa.Column("fingerprint", sa.String, nullable=False),
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
        sa.Column("occurred_at", TZ, nullable=False),
        sa.Column("diagnosis", sa.JSON, nullable=False),
        sa.Column("event", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["qr_incidents.id"],
            name="fk_qr_diagnoses_incident_id_qr_incidents",
            ondelete="CASCADE",
        ),
        _pk("qr_diagnoses"),
    )
    for column in ("incident_id", "fingerprint", "occurred_at"):
        _index("qr_diagnoses", column)


def _plans_and_attempts() -> None:
    op.create_table(
        "qr_plans",
        _id(),
        sa.Column("fingerprint", sa.String, nullable=False),
        sa.Column("root_cause", sa.String, nullable=False),
        sa.Column("recommended_type", sa.String, nullable=True),
        sa.Column("dag_id", sa.String, nullable=True),
        sa.Column("task_id", sa.String, nullable=True),
        sa.Column("run_id", sa.String, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        _pk("qr_plans"),
    )
    _index("qr_plans", "fingerprint")
    _index("qr_plans", "created_at")
    op.create_table(
        "qr_attempts",
        _id(),
        sa.Column("idempotency_key", sa.String, nullable=False),
        sa.Column("fingerprint", sa.String, nullable=False),
        sa.Column("action", sa.String, nullable=False),
        sa.Column("action_args", sa.JSON, nullable=False),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String, nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("host", sa.String, nullable=True),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ, nullable=True),
        _pk("qr_attempts"),
        sa.UniqueConstraint("idempotency_key", name="uq_qr_attempts_idempotency_key"),
    )
    for column in ("fingerprint", "host", "started_at"):
        _index("qr_attempts", column)


def _checkpoints() -> None:
    op.create_table(
        "qr_checkpoints",
        _id(),
        sa.Column("dag_id", sa.String, nullable=False),
        sa.Column("task_id", sa.String, nullable=False),
        sa.Column("run_id", sa.String, nullable=False),
        sa.Column("host", sa.String, nullable=True),
        sa.Column("state", sa.JSON, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        _pk("qr_checkpoints"),
    )
    _index("qr_checkpoints", "recorded_at")
    op.create_index("ix_qr_checkpoints_dag_task_run", "qr_checkpoints", ["dag_id", "task_id", "run_id"])


def _escalations_and_shadow() -> None:
    op.create_table(
        "qr_escalation_outbox",
        _id(),
        sa.Column("fingerprint", sa.String, nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("status", sa.String, nullable=False),
        sa.Column("reference", sa.Text, nullable=True),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("sent_at", TZ, nullable=True),
        _pk("qr_escalation_outbox"),
    )
    _index("qr_escalation_outbox", "fingerprint")
    _index("qr_escalation_outbox", "status")
    op.create_table(
        "qr_shadow_errors",
        _id(),
        sa.Column("dedup_hash", sa.String, nullable=False),
        sa.Column("dedup_key", sa.Text, nullable=False),
        sa.Column("type", sa.String, nullable=False),
        sa.Column("dag_id", sa.String, nullable=True),
        sa.Column("run_id", sa.String, nullable=True),
        sa.Column("task_id", sa.String, nullable=True),
        sa.Column("resource", sa.String, nullable=True),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("severity", sa.String, nullable=False),
        sa.Column("seen_count", sa.Integer, nullable=False),
        sa.Column("first_seen", TZ, nullable=False),
        sa.Column("last_seen", TZ, nullable=False),
        sa.Column("finding", sa.JSON, nullable=False),
        _pk("qr_shadow_errors"),
        sa.UniqueConstraint("dedup_hash", name="uq_qr_shadow_errors_dedup_hash"),
    )
    _index("qr_shadow_errors", "type")
    _index("qr_shadow_errors", "last_seen")
    op.create_table(
        "qr_applied_events",
        sa.Column("event_id", sa.String, nullable=False),
        sa.Column("op", sa.String, nullable=False),
        sa.Column("applied_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_qr_applied_events"),
    )
    _index("qr_applied_events", "applied_at")


def upgrade() -> None:
    _incidents()
    _diagnoses()
    _plans_and_attempts()
    _checkpoints()
    _escalations_and_shadow()


def downgrade() -> None:
    for table in (
        "qr_applied_events",
        "qr_shadow_errors",
        "qr_escalation_outbox",
        "qr_checkpoints",
        "qr_attempts",
        "qr_plans",
        "qr_diagnoses",
        "qr_incident_hosts",
        "qr_incident_dags",
        "qr_incidents",
    ):
        op.drop_table(table)
