"""``qubinode-recovery findings list | show | ack | resolve | reopen``: shadow findings in the ledger.

A finding is recorded once per (type, DAG, run, task, resource) by the shadow scan (the DAG, or ``scan
--record`` / ``--incremental``). It is ``open`` until a person acknowledges it (``ack``: known, being
handled) or resolves it (``resolve``: fixed); a later scan that sees it again leaves it so, unless it
changed (its severity or evidence, numbers aside), which opens it again and escalates it again.

The ledger is the one configured for Airflow, or ``--ledger URL`` (as for ``incidents``). Exit codes:
0 done, 1 no such finding, 2 bad or unreachable ledger (one line on stderr).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.cli import EXIT_OK, EXIT_PROBLEM, UsageError, output
from qubinode_recovery_provider.cli.common import MAX_INT, bounded_int
from qubinode_recovery_provider.cli.incidents import (
    MAX_LIST_LIMIT,
    _clip,
    _open,
    _read,
    _time,
    render_table,
    show_one,
)

if TYPE_CHECKING:
    from qubinode_recovery_provider.store import Ledger
    from qubinode_recovery_provider.store.queries import ShadowEntry

STATES = ("open", "acknowledged", "resolved")
#: The state each action sets.
ACTIONS = {"ack": "acknowledged", "resolve": "resolved", "reopen": "open"}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "findings", help="list, show, acknowledge or resolve shadow-scan findings recorded in the ledger"
    )
    sub = parser.add_subparsers(dest="findings_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="findings, most recently seen first")
    listing.add_argument("--state", choices=STATES, help="only findings in this state")
    listing.add_argument("--type", dest="finding_type", metavar="TYPE", help="only findings of this type")
    listing.add_argument(
        "--limit",
        type=bounded_int(1, MAX_LIST_LIMIT),
        default=50,
        metavar="N",
        help=f"at most N findings (default 50, at most {MAX_LIST_LIMIT})",
    )
    _common(listing)
    listing.set_defaults(func=run_list)

    show = sub.add_parser("show", help="one finding with its evidence")
    show.add_argument("finding", type=bounded_int(1, MAX_INT), metavar="ID", help="the finding's number")
    _common(show)
    show.set_defaults(func=run_show)

    for action, state in ACTIONS.items():
        change = sub.add_parser(action, help=f"mark a finding {state}")
        change.add_argument(
            "finding", type=bounded_int(1, MAX_INT), metavar="ID", help="the finding's number"
        )
        change.add_argument("--note", metavar="TEXT", help="why (kept with the finding)")
        _common(change)
        change.set_defaults(func=run_change, state=state)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine output")
    parser.add_argument(
        "--ledger", metavar="URL", help="SQLAlchemy URL of the ledger (default: the configured ledger)"
    )


def run_list(args: argparse.Namespace) -> int:
    """Print the findings, most recently seen first.

    :param args: the parsed arguments.
    """
    entries = (
        _read(
            args.ledger,
            lambda ledger: ledger.shadow_errors(
                limit=args.limit, state=args.state, finding_type=args.finding_type
            ),
        )
        or []
    )
    if args.json:
        for entry in entries:
            output.write_json(entry)
        return EXIT_OK
    output.write(render_list(entries))
    return EXIT_OK


def render_list(entries: list[ShadowEntry]) -> str:
    """A table of findings."""
    if not entries:
        return "No findings.\n"
    header = ("ID", "STATE", "SEEN", "LAST SEEN (UTC)", "TYPE", "DAG / RUN / TASK", "RESOURCE")
    rows = [
        (
            str(e["id"]),
            e["state"],
            str(e["seen_count"]),
            _time(e["last_seen"]),
            e["type"] + (" (inferred)" if e["inferred"] else ""),
            _clip(" / ".join(p for p in (e["dag_id"], e["run_id"], e["task_id"]) if p) or "-", 70),
            e["resource"] or "-",
        )
        for e in entries
    ]
    return render_table(header, rows, "finding")


def run_show(args: argparse.Namespace) -> int:
    """Print one finding; exit 1 when there is none with that id.

    :param args: the parsed arguments.
    """
    return show_one(
        args,
        lambda ledger: ledger.shadow_error(args.finding),
        render_detail,
        f"no finding {args.finding} in the ledger",
    )


def render_detail(entry: ShadowEntry) -> str:
    """A readable report of one finding."""
    where = " / ".join(p for p in (entry["dag_id"], entry["run_id"], entry["task_id"]) if p) or "-"
    state = entry["state"]
    if entry["state_changed_at"]:
        state += f" since {_time(entry['state_changed_at'])} UTC"
    if entry["state_note"]:
        state += f" ({entry['state_note']})"
    lines = [
        f"Finding {entry['id']}  [{entry['type']}{', inferred' if entry['inferred'] else ''}]",
        f"  State:       {state}",
        f"  Where:       {where}",
        f"  Resource:    {entry['resource'] or '-'}",
        f"  Severity:    {entry['severity']} (confidence {entry['confidence']:.2f})",
        f"  Seen:        {entry['seen_count']} times (first {_time(entry['first_seen'])}, last "
        f"{_time(entry['last_seen'])} UTC); raised {entry['raise_count']} times",
        "",
        "Evidence",
        *(f"  {line}" for line in entry["evidence"]),
    ]
    return "\n".join(lines) + "\n"


def run_change(args: argparse.Namespace) -> int:
    """Acknowledge, resolve or reopen a finding; exit 1 when there is none with that id.

    :param args: the parsed arguments.
    """
    changed = _write(
        args.ledger, lambda ledger: ledger.set_finding_state(args.finding, args.state, args.note)
    )
    if not changed:
        output.notice(f"qubinode-recovery: no finding {args.finding} in the ledger")
        return EXIT_PROBLEM
    if args.json:
        output.write_json({"id": args.finding, "state": args.state, "note": args.note})
    else:
        output.write(f"finding {args.finding}: {args.state}\n")
    return EXIT_OK


def _write(url: str | None, writer: Any) -> Any:
    """Run ``writer(ledger)``; an unusable ledger is a one-line :class:`UsageError`."""
    from sqlalchemy import exc as sa_exc

    from qubinode_recovery_provider.store import LedgerUnavailable

    ledger: Ledger | None = _open(url)
    if ledger is None:
        return None
    try:
        return writer(ledger)
    except (LedgerUnavailable, sa_exc.SQLAlchemyError) as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
        raise UsageError(
            f"cannot write ledger {ledger.url.render_as_string(hide_password=True)}: {reason}"
        ) from None
    finally:
        ledger.close()
