"""Indexes for the UI plugin's filtered, paginated pages (category, DAG, task instance, host).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 12:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXES: tuple[tuple[str, str, list[str]], ...] = (
    ("ix_qr_incidents_root_cause_last_seen", "qr_incidents", ["root_cause", "last_seen"]),
    ("ix_qr_incidents_occurrences", "qr_incidents", ["occurrences"]),
    ("ix_qr_incident_dags_dag_id", "qr_incident_dags", ["dag_id"]),
    ("ix_qr_diagnoses_dag_task_run", "qr_diagnoses", ["dag_id", "task_id", "run_id"]),
    ("ix_qr_diagnoses_root_cause_occurred_at", "qr_diagnoses", ["root_cause", "occurred_at"]),
    ("ix_qr_shadow_errors_dag_id", "qr_shadow_errors", ["dag_id"]),
    ("ix_qr_shadow_errors_resource", "qr_shadow_errors", ["resource"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
