"""Shadow scan state: the findings' lifecycle (state, note, change signature) and the scan watermarks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 11:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("qr_shadow_errors") as batch:
        batch.add_column(sa.Column("state", sa.String, nullable=False, server_default="open"))
        batch.add_column(sa.Column("state_changed_at", TZ, nullable=True))
        batch.add_column(sa.Column("state_note", sa.Text, nullable=True))
        batch.add_column(sa.Column("signature", sa.String, nullable=True))
        batch.add_column(sa.Column("raise_count", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("last_raised", TZ, nullable=True))
        batch.create_index("ix_qr_shadow_errors_state", ["state"])
    op.create_table(
        "qr_scan_watermarks",
        sa.Column("source", sa.String, nullable=False),
        sa.Column("position", sa.JSON, nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_qr_scan_watermarks"),
    )


def downgrade() -> None:
    op.drop_table("qr_scan_watermarks")
    with op.batch_alter_table("qr_shadow_errors") as batch:
        batch.drop_index("ix_qr_shadow_errors_state")
        for column in ("last_raised", "raise_count", "signature", "state_note", "state_changed_at", "state"):
            batch.drop_column(column)
