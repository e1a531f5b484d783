"""``qubinode-recovery ledger migrate``: the ledger's schema brought to the newest migration.

Every process migrates the ledger on first use; this command does it once, up front, for a
deployment's init step (docker-compose.yaml's ``airflow-init``). Idempotent. The ledger is the
configured one (``[qubinode_recovery] ledger_url`` or ``ledger_conn_id``, else the SQLite file in
``state_dir``) or ``--ledger URL``. An unusable ledger is one line on stderr (exit 2).
"""

from __future__ import annotations

import argparse

from qubinode_recovery_provider.cli import EXIT_OK, UsageError, output
from qubinode_recovery_provider.cli.common import ledger_problem


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("ledger", help="ledger maintenance")
    sub = parser.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    migrate = sub.add_parser("migrate", help="bring the ledger's schema to the newest migration")
    migrate.add_argument(
        "--ledger", metavar="URL", help="SQLAlchemy URL of the ledger (default: the configured ledger)"
    )
    migrate.add_argument("--json", action="store_true", help="machine output")
    migrate.set_defaults(func=run_migrate)


def run_migrate(args: argparse.Namespace) -> int:
    """Migrate the ledger; print whether anything changed."""
    from sqlalchemy import exc as sa_exc

    from qubinode_recovery_provider.store import Ledger, LedgerUnavailable, LedgerURLError

    try:
        ledger = Ledger.from_config(migrate=False) if args.ledger is None else Ledger(args.ledger)
    except LedgerURLError as exc:
        raise UsageError(str(exc)) from None
    try:
        changed = ledger.migrate()
    except (LedgerUnavailable, sa_exc.SQLAlchemyError) as exc:
        raise ledger_problem(ledger, exc, "migrate") from None
    finally:
        ledger.close()
    where = ledger.url.render_as_string(hide_password=True)
    if args.json:
        output.write_json({"ledger": where, "migrated": changed})
    else:
        output.write(f"ledger {where}: {'migrated' if changed else 'already up to date'}\n")
    return EXIT_OK


__all__ = ["register", "run_migrate"]
