"""Escalation delivery: the outbox entry's kind and retry time, and one row per escalated fingerprint
(its GitHub issue, the comment rate limit, the delivery claim).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)
ISSUES = "qr_escalation_issues"


def upgrade() -> None:
    with op.batch_alter_table("qr_escalation_outbox") as batch:
        batch.add_column(sa.Column("kind", sa.String, nullable=False, server_default="escalate"))
        batch.add_column(sa.Column("next_attempt_at", TZ, nullable=True))
    op.create_table(
        ISSUES,
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String, nullable=False),
        sa.Column("number", sa.Integer, nullable=True),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("state", sa.String, nullable=True),
        sa.Column("occurrences", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unreported", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_context", sa.Text, nullable=True),
        sa.Column("last_comment_at", TZ, nullable=True),
        sa.Column("claimed_by", sa.String, nullable=True),
        sa.Column("claimed_until", TZ, nullable=True),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("id", name=f"pk_{ISSUES}"),
        sa.UniqueConstraint("fingerprint", name=f"uq_{ISSUES}_fingerprint"),
    )


def downgrade() -> None:
    op.drop_table(ISSUES)
    with op.batch_alter_table("qr_escalation_outbox") as batch:
        batch.drop_column("next_attempt_at")
        batch.drop_column("kind")
