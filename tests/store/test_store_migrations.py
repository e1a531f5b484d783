"""Schema changes go through Alembic migrations, and an upgrade never loses stored incidents."""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from store_workers import make_diagnosis, make_event
from support import processes

from qubinode_recovery_provider.store import Ledger, head_revision
from qubinode_recovery_provider.store.migrate import (
    HEAD_REVISION,
    MIGRATIONS_DIR,
    VERSION_TABLE,
    current_revision,
    upgrade,
)
from qubinode_recovery_provider.store.schema import metadata


def _not_version_table(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "table" and name == VERSION_TABLE)


def test_migrated_schema_matches_the_models(ledger: Ledger) -> None:
    """The ``alembic check`` of this project: migrations and :mod:`schema` describe the same tables."""
    with ledger.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "include_object": _not_version_table}
        )
        assert compare_metadata(context, metadata) == []


def test_migrate_again_is_a_no_op_that_keeps_rows(ledger: Ledger, ledger_url: str, spool_dir: Path) -> None:
    for n in range(3):
        ledger.record_failure(make_event(), make_diagnosis(f"fp-{n}"))
    ledger.record_failure(make_event(), make_diagnosis("fp-0"))
    assert current_revision(ledger.engine) == head_revision() == HEAD_REVISION

    again = Ledger(ledger_url, spool_dir)
    assert again.migrate() is False
    assert {i.fingerprint: i.occurrences for i in again.list_incidents()} == {"fp-0": 2, "fp-1": 1, "fp-2": 1}
    again.close()


NEXT_REVISION = '''
"""A later release: incidents get an owner, filled in for existing rows.

Revision ID: 0099
Revises: {head}
"""

import sqlalchemy as sa
from alembic import op

revision = "0099"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("qr_incidents") as batch:
        batch.add_column(sa.Column("owner", sa.String, nullable=True))
    op.execute("UPDATE qr_incidents SET owner = 'platform-team'")
    with op.batch_alter_table("qr_incidents") as batch:
        batch.alter_column("owner", existing_type=sa.String, nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("qr_incidents") as batch:
        batch.drop_column("owner")
'''


def test_upgrade_to_a_new_release_keeps_incidents(ledger: Ledger, tmp_path: Path) -> None:
    """Simulate the next release: the shipped migrations plus a 0099 that rebuilds the incidents table
    (a batch operation on SQLite). Every stored incident, its DAGs and diagnoses are still there."""
    for n in range(5):
        ledger.record_failure(make_event(dag_id=f"dag_{n}"), make_diagnosis(f"fp-{n % 2}"))
    before = {i.fingerprint: (i.id, i.occurrences, i.dag_ids) for i in ledger.list_incidents()}
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "0099_owner.py").write_text(
        textwrap.dedent(NEXT_REVISION).replace("{head}", HEAD_REVISION)
    )

    assert upgrade(ledger.engine, script_location=scripts) is True
    assert upgrade(ledger.engine, script_location=scripts) is False
    assert current_revision(ledger.engine) == "0099"
    after = {i.fingerprint: (i.id, i.occurrences, i.dag_ids) for i in ledger.list_incidents()}
    assert after == before
    with ledger.engine.connect() as conn:
        owners = conn.execute(sa.text("SELECT DISTINCT owner FROM qr_incidents")).scalars().all()
        diagnoses = conn.execute(sa.text("SELECT count(*) FROM qr_diagnoses")).scalar()
    assert owners == ["platform-team"]
    assert diagnoses == 5


def test_offline_sql_renders_without_a_database(tmp_path: Path) -> None:
    """``alembic upgrade --sql`` works from the packaged scripts (for DBAs who apply SQL by hand)."""
    code = textwrap.dedent(
        """
        from alembic import command
        from qubinode_recovery_provider.store.migrate import alembic_config
        cfg = alembic_config()
        cfg.set_main_option("sqlalchemy.url", "postgresql+psycopg://u@h/db")
        command.upgrade(cfg, "head", sql=True)
        """
    )
    result = processes.run([sys.executable, "-c", code], check=True, cwd=tmp_path, timeout=120)
    assert "CREATE TABLE qr_incidents" in result.stdout
    assert "qr_alembic_version" in result.stdout


def test_the_packaged_head_constant_matches_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    from qubinode_recovery_provider.store.migrate import HEAD_REVISION, alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION
