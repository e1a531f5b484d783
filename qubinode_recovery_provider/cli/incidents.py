"""``qubinode-recovery incidents list | show``: read the incident ledger.

The ledger is the one configured for Airflow (``[qubinode_recovery] ledger_url`` or
``ledger_conn_id``, else the SQLite file in ``state_dir``), or ``--ledger URL``. Exit codes: 0 done,
1 ``show`` found no such incident, 2 bad or unreachable ledger URL (one line on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.cli import EXIT_OK, EXIT_PROBLEM, UsageError, output
from qubinode_recovery_provider.cli.common import (
    bounded_int,
    incident_ref,
    json_and_ledger_flags,
    ledger_problem,
    verbose_flag,
)
from qubinode_recovery_provider.models import IncidentState
from qubinode_recovery_provider.output_limits import NOT_SHOWN_KEY, OutputLimits, incident_data, more_note

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import Incident
    from qubinode_recovery_provider.store import Ledger

_STATES = [s.value for s in IncidentState]
MAX_LIST_LIMIT = 10_000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("incidents", help="list or show incidents recorded in the ledger")
    sub = parser.add_subparsers(dest="incidents_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="incidents, most recently seen first")
    listing.add_argument("--state", choices=_STATES, help="only incidents in this state")
    listing.add_argument(
        "--limit",
        type=bounded_int(1, MAX_LIST_LIMIT),
        default=50,
        metavar="N",
        help=f"at most N incidents (default 50, at most {MAX_LIST_LIMIT})",
    )
    json_and_ledger_flags(listing)
    listing.set_defaults(func=run_list)

    show = sub.add_parser("show", help="one incident with its diagnoses, plans, attempts and escalations")
    show.add_argument(
        "incident",
        type=incident_ref,
        metavar="ID_OR_FINGERPRINT",
        help="the incident's number or its fingerprint",
    )
    json_and_ledger_flags(show)
    verbose_flag(show)
    show.set_defaults(func=run_show)


# --- opening the ledger ----------------------------------------------------------------------------


def _open(url: str | None) -> Ledger | None:
    """The ledger to read; None when the configured SQLite ledger has not been created yet."""
    from qubinode_recovery_provider.store import Ledger, LedgerURLError
    from qubinode_recovery_provider.store.engine import sqlite_path

    try:
        ledger = Ledger.from_config(migrate=False) if url is None else Ledger(url)
    except LedgerURLError as exc:
        raise UsageError(str(exc)) from None
    ledger.auto_flush_interval = 0
    path = sqlite_path(ledger.url)
    if path is not None and not path.is_file():
        if url is not None:
            raise UsageError(f"no ledger database at {path}")
        return None
    return ledger


def _read(url: str | None, reader: Any) -> Any:
    """Run ``reader(ledger)``; database errors become a one-line :class:`UsageError`."""
    from sqlalchemy import exc as sa_exc

    from qubinode_recovery_provider.store import LedgerUnavailable

    ledger = _open(url)
    if ledger is None:
        return None
    try:
        return reader(ledger)
    except (LedgerUnavailable, sa_exc.SQLAlchemyError) as exc:
        raise ledger_problem(ledger, exc) from None
    finally:
        ledger.close()


# --- list ------------------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    """Print the incidents, most recently seen first.

    :param args: the parsed arguments.
    """
    state = IncidentState(args.state) if args.state else None
    incidents = _read(args.ledger, lambda ledger: ledger.list_incidents(state=state, limit=args.limit)) or []
    if args.json:
        for incident in incidents:
            output.write_json(incident.model_dump(mode="json"))
        return EXIT_OK
    output.write(render_list(incidents))
    return EXIT_OK


def render_list(incidents: Sequence[Incident]) -> str:
    """A table of incidents."""
    if not incidents:
        return "No incidents.\n"
    header = ("ID", "STATE", "OCCURRENCES", "LAST SEEN (UTC)", "ROOT CAUSE", "DAGS", "FINGERPRINT", "SUMMARY")
    rows = [
        (
            str(i.id),
            i.state.value,
            str(i.occurrences),
            _time(i.last_seen),
            i.root_cause.value,
            _clip(",".join(i.dag_ids) or "-", 30),
            i.fingerprint,
            _clip(i.summary or "-", 60),
        )
        for i in incidents
    ]
    return render_table(header, rows, "incident")


def render_table(header: Sequence[str], rows: Sequence[Sequence[str]], noun: str) -> str:
    """Aligned columns (the last one left free), then ``N <noun>s``.

    :param header: the column titles.
    :param rows: the cells.
    :param noun: what a row is, for the count line.
    """
    widths = [max(len(row[col]) for row in [header, *rows]) for col in range(len(header) - 1)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False)) + "  " + row[-1]
        for row in [header, *rows]
    ]
    lines.append(f"{len(rows)} {noun}{'s' if len(rows) != 1 else ''}")
    return "\n".join(line.rstrip() for line in lines) + "\n"


# --- show ------------------------------------------------------------------------------------------


def run_show(args: argparse.Namespace) -> int:
    """Print one incident; exit 1 when there is none with that id or fingerprint.

    :param args: the parsed arguments.
    """
    limits = OutputLimits.configured(verbose=args.verbose)
    return show_one(
        args,
        lambda ledger: incident_data(ledger.incident_detail(args.incident), limits),
        render_detail,
        f"no incident {args.incident!r} in the ledger",
    )


def show_one(args: argparse.Namespace, reader: Any, render: Any, missing: str) -> int:
    """Read one record with ``reader(ledger)`` and print it (``render``, or JSON with ``--json``);
    exit 1 with ``missing`` when there is none.

    :param args: the parsed arguments (``ledger``, ``json``).
    :param reader: ``ledger -> record or None``.
    :param render: ``record -> text``.
    :param missing: what to say when there is no such record.
    """
    record = _read(args.ledger, reader)
    if not record:
        output.notice(f"qubinode-recovery: {missing}")
        return EXIT_PROBLEM
    if args.json:
        output.write_json(record, indent=2)
    else:
        output.write(render(record))
    return EXIT_OK


def render_detail(detail: dict[str, Any]) -> str:
    """A readable report of one incident (the dict of ``Ledger.incident_detail``)."""
    lines = _incident_header(detail["incident"])
    if detail.get("github_issue"):
        lines.append(f"  GitHub issue: {detail['github_issue']}")
    sections = (
        ("Diagnoses", detail["diagnoses"], _diagnosis_lines),
        ("Plans", detail["plans"], _plan_lines),
        ("Recovery attempts", detail["attempts"], _attempt_lines),
        ("Escalations", detail["escalations"], _escalation_lines),
        ("Checkpoints", detail["checkpoints"], _checkpoint_lines),
    )
    for title, items, render in sections:
        lines.append("")
        lines.append(f"{title} ({len(items)}{', newest first' if len(items) > 1 else ''})")
        if not items:
            lines.append("  none")
        for item in items:
            lines.extend(render(item))
    return "\n".join(lines) + "\n"


def _incident_header(inc: dict[str, Any]) -> list[str]:
    return [
        f"Incident {inc['id']}  [{inc['state']}]",
        f"  Fingerprint:  {inc['fingerprint']}",
        f"  Root cause:   {inc['root_cause']}",
        f"  Summary:      {inc['summary'] or '-'}",
        f"  Occurrences:  {inc['occurrences']} (first seen {_time(inc['first_seen'])}, "
        f"last seen {_time(inc['last_seen'])} UTC)",
        f"  DAGs:         {', '.join(inc['dag_ids']) or '-'}",
        f"  Hosts:        {', '.join(inc['hosts']) or '-'}",
    ]


def _diagnosis_lines(item: dict[str, Any]) -> list[str]:
    diag = item["diagnosis"]
    where = ".".join(p for p in (item.get("dag_id"), item.get("task_id")) if p) or "-"
    patterns = ", ".join(m["pattern_id"] for m in diag.get("matched_patterns", [])[:3]) or "no pattern"
    lines = [
        f"  {_time(item['occurred_at'])}  {where}  run={item.get('run_id') or '-'}  "
        f"try={item.get('try_number') or '-'}  host={item.get('host') or '-'}",
        f"      {diag['root_cause']} (confidence {diag['confidence']:.2f}, "
        f"severity {diag['severity']}; {patterns})",
    ]
    prefix = f"{item['exception_type']}: " if item.get("exception_type") else ""
    error = prefix + (item.get("exception_text") or "")
    if error.strip():
        lines.append(f"      {_clip(error, 100)}")
    lines += _advice_lines(diag)
    if diag.get("llm"):
        from pydantic import ValidationError

        from qubinode_recovery_provider.models import LLMOpinion

        with contextlib.suppress(ValidationError):
            lines.append(f"      {_clip(LLMOpinion.model_validate(diag['llm']).describe(), 160)}")
    return lines


def _advice_lines(diag: dict[str, Any]) -> list[str]:
    """The diagnosis's services, actions and commands as shown (already limited)."""
    lines = []
    if diag.get("affected_services"):
        lines.append(f"      services: {', '.join(diag['affected_services'])}")
    lines += [f"      - {_clip(action, 160)}" for action in diag.get("recommended_actions") or []]
    lines += [f"      $ {_clip(cmd, 160)}" for cmd in diag.get("diagnostic_commands") or []]
    hidden = diag.get(NOT_SHOWN_KEY) or {}
    notes = [
        more_note(hidden.get(key, 0), noun)
        for key, noun in (("recommended_actions", "action"), ("diagnostic_commands", "command"))
    ]
    lines += [f"      ({note})" for note in notes if note]
    return lines


def _plan_lines(plan: dict[str, Any]) -> list[str]:
    index = plan.get("recommended_index")
    options = plan.get("options", [])
    best = options[index] if index is not None and 0 <= index < len(options) else None
    summary = (
        f"recommends {best['type']}: {best['title']} "
        f"(confidence {best['confidence']:.2f}, risk {best['risk']})"
        if best
        else "no recommendation"
    )
    return [
        f"  {_time(plan['created_at'])}  {len(options)} option{'' if len(options) == 1 else 's'}; {summary}"
    ]


def _attempt_lines(attempt: dict[str, Any]) -> list[str]:
    flags = " (dry run)" if attempt["dry_run"] else ""
    line = (
        f"  {_time(attempt['started_at'])}  {attempt['action']}{flags}  {attempt['outcome']}  "
        f"key={attempt['idempotency_key']}  host={attempt.get('host') or '-'}"
    )
    return [line] + ([f"      {_clip(attempt['detail'], 100)}"] if attempt.get("detail") else [])


def _escalation_lines(item: dict[str, Any]) -> list[str]:
    target = f" -> {item['reference']}" if item.get("reference") else ""
    return [f"  #{item['id']}  {item['status']}  {_clip(item['title'], 80)}{target}"]


def _checkpoint_lines(item: dict[str, Any]) -> list[str]:
    return [
        f"  {_time(item['recorded_at'])}  {item['dag_id']}.{item['task_id']}  run={item['run_id']}  "
        f"{_clip(json.dumps(item['state'], sort_keys=True), 80)}"
    ]


def _time(value: datetime | str | None) -> str:
    if value is None:
        return "-"
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"
