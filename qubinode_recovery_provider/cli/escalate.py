"""``qubinode-recovery escalate`` and ``qubinode-recovery escalations deliver``: GitHub issues from a shell
or a CI job.

``escalate --analysis-file FILE [--plan-file FILE]`` reads a diagnosis (as written by ``diagnose --json``
or ``--output``), plans its recovery unless a plan (``plan --json``) is given, queues the escalation in the
ledger and files or updates the fingerprint's one GitHub issue, then prints the issue's URL. The
repository and token come from ``GITHUB_REPOSITORY`` and ``GITHUB_TOKEN`` (``GITHUB_API_URL`` for GitHub
Enterprise; GitHub Actions sets it). ``escalations deliver`` sends what waits in the outbox, through the
same variables or, without a token, the Airflow ``github`` connection (``github_conn_id``).

Exit codes: 0 delivered, 1 not delivered now (the entry stays queued in the ledger and is delivered by the
next ``escalations deliver`` or the shadow scan), 2 bad input or no token (one line on stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from qubinode_recovery_provider.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_PROBLEM, UsageError, output
from qubinode_recovery_provider.cli.common import (
    json_and_ledger_flags,
    ledger_problem,
    load_json,
    read_document,
)

if TYPE_CHECKING:
    from qubinode_recovery_provider.escalation.github import GitHubIssues
    from qubinode_recovery_provider.models import Diagnosis, RecoveryPlan
    from qubinode_recovery_provider.store import Ledger

DEFAULT_REASON = "escalated from the command line"
MAX_RUN_ID = 250


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "escalate",
        help="file or update the GitHub issue of a diagnosed failure (GITHUB_TOKEN, GITHUB_REPOSITORY)",
        description="Queue the escalation of a diagnosed failure and deliver it to its one GitHub issue.",
    )
    parser.add_argument(
        "--analysis-file",
        required=True,
        metavar="FILE",
        help="a diagnosis JSON ('diagnose --json'; '-': stdin)",
    )
    parser.add_argument("--plan-file", metavar="FILE", help="a plan JSON ('plan --json'); default: plan it")
    parser.add_argument("--reason", metavar="TEXT", default=DEFAULT_REASON, help="why it is escalated")
    parser.add_argument(
        "--run-id",
        type=run_ref,
        metavar="ID",
        help="the failed run (a CI run id): one escalation per fingerprint and run; default the "
        "diagnosis's run",
    )
    json_and_ledger_flags(parser)
    parser.set_defaults(func=run_escalate)

    group = subparsers.add_parser("escalations", help="the escalation outbox")
    commands = group.add_subparsers(dest="escalations_command", metavar="COMMAND", required=True)
    deliver = commands.add_parser(
        "deliver",
        help="deliver the escalations waiting in the outbox to GitHub issues",
        description="Deliver the due outbox entries (GITHUB_TOKEN/GITHUB_REPOSITORY, else the Airflow "
        "github connection).",
    )
    json_and_ledger_flags(deliver)
    deliver.set_defaults(func=run_deliver)


def run_escalate(args: argparse.Namespace) -> int:
    """Escalate one diagnosed failure to GitHub and print the issue URL.

    :param args: the parsed arguments.
    """
    from qubinode_recovery_provider.escalation import escalate
    from qubinode_recovery_provider.escalation.delivery import deliver_escalations
    from qubinode_recovery_provider.escalation.github import DeliveryFailure, checked_fingerprint

    sink = _env_sink()
    diagnosis = read_analysis(args.analysis_file)
    try:
        checked_fingerprint(diagnosis.fingerprint)
    except DeliveryFailure as exc:
        raise UsageError(f"{args.analysis_file}: not a diagnosis: {exc.reason}") from None
    if args.run_id:
        diagnosis = diagnosis.model_copy(update={"run_id": args.run_id})
    plan = read_plan(args.plan_file, diagnosis) if args.plan_file else _plan(diagnosis)
    if args.run_id:
        plan = plan.model_copy(update={"run_id": args.run_id})
    reason = " ".join(str(args.reason or "").split()) or DEFAULT_REASON
    with _ledger(args.ledger) as ledger:
        queued = escalate(ledger, plan, [reason], diagnosis=diagnosis, github=True)
        report = deliver_escalations(ledger, sink, fingerprint=plan.fingerprint)
        record = ledger.escalation_issue(plan.fingerprint)
        waiting = [e for e in ledger.pending_escalations(limit=500) if e["fingerprint"] == plan.fingerprint]
    url = record["url"] if record else None
    result = {
        "fingerprint": plan.fingerprint,
        "issue_url": url,
        "delivered": not waiting and url is not None,
        "queued": len(waiting),
        "report_path": queued.report_path,
        "github": report.to_dict(),
    }
    return _finish(args, result, url if result["delivered"] else None, report.errors, report.retry_at)


def run_deliver(args: argparse.Namespace) -> int:
    """Deliver the outbox's due entries.

    :param args: the parsed arguments.
    """
    from qubinode_recovery_provider.escalation.delivery import deliver_escalations

    sink = _env_sink() if os.environ.get("GITHUB_TOKEN", "").strip() else _airflow_sink()
    with _ledger(args.ledger) as ledger:
        report = deliver_escalations(ledger, sink)
    data = report.to_dict()
    if args.json:
        output.write_json(data, indent=2)
    else:
        output.write(
            f"delivered {report.delivered} (created {report.created}, commented {report.commented}, "
            f"counted {report.counted}, reopened {report.reopened}, closed {report.closed}); "
            f"deferred {report.deferred}"
        )
    for error in report.errors:
        output.warn(f"not delivered: {error}")
    return EXIT_PROBLEM if report.errors else EXIT_OK


def run_ref(text: str) -> str:
    """A run id: 1 to 250 printable characters."""
    value = text.strip()
    if not value or len(value) > MAX_RUN_ID or not value.isprintable():
        raise argparse.ArgumentTypeError(f"a run id is 1 to {MAX_RUN_ID} printable characters")
    return value


def _finish(
    args: argparse.Namespace, result: dict[str, Any], url: str | None, errors: list[str], retry_at: str | None
) -> int:
    if args.json:
        output.write_json(result, indent=2)
    elif url:
        output.write(url)
    if url:
        return EXIT_OK
    why = "; ".join(errors) or "not delivered"
    later = f", next try after {retry_at}" if retry_at else ""
    output.warn(f"GitHub issue not filed now ({why}); the escalation stays queued{later}")
    return EXIT_PROBLEM


def _env_sink() -> GitHubIssues:
    from qubinode_recovery_provider.escalation.github import issues_from_env

    try:
        return issues_from_env()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _airflow_sink() -> GitHubIssues:
    try:
        from qubinode_recovery_provider.hooks.github import github_issues

        return github_issues()
    except ImportError:
        raise UsageError("GITHUB_TOKEN is not set and Airflow's GitHub provider is not installed") from None
    except Exception as exc:
        from qubinode_recovery_provider.escalation.github import one_line

        reason = one_line(exc)
        raise UsageError(
            f"GITHUB_TOKEN is not set and the Airflow github connection is unusable: {reason}"
        ) from None


def read_analysis(name: str) -> Diagnosis:
    """The diagnosis in ``name`` (a ``diagnose --json`` object, or one with a ``diagnosis`` member)."""
    from qubinode_recovery_provider.models import Diagnosis

    data = _object(name, "a diagnosis JSON")
    if isinstance(data.get("diagnosis"), dict):
        data = data["diagnosis"]
    return _validate(Diagnosis, data, name, "a diagnosis")


def read_plan(name: str, diagnosis: Diagnosis) -> RecoveryPlan:
    """The plan in ``name`` (``plan --json``); it must be the plan of ``diagnosis``."""
    from qubinode_recovery_provider.models import RecoveryPlan

    data = _object(name, "a plan JSON")
    if isinstance(data.get("plan"), dict):
        data = data["plan"]
    plan = _validate(RecoveryPlan, data, name, "a recovery plan")
    if plan.fingerprint != diagnosis.fingerprint:
        raise UsageError(
            f"{name}: the plan is for fingerprint {plan.fingerprint}, not {diagnosis.fingerprint}"
        )
    return plan


def _object(name: str, what: str) -> dict[str, Any]:
    data = load_json(read_document(name, what), name)
    if not isinstance(data, dict):
        raise UsageError(f"{name}: expected {what} object, got {type(data).__name__}")
    return data


def _validate(model: Any, data: dict[str, Any], name: str, what: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or what
        raise UsageError(f"{name}: not {what}: {where}: {first.get('msg', 'invalid')}") from None


def _plan(diagnosis: Diagnosis) -> RecoveryPlan:
    from qubinode_recovery_provider.recovery import RecoveryPlanner

    return RecoveryPlanner(events=None).plan_recovery(diagnosis)


@contextlib.contextmanager
def _ledger(url: str | None) -> Iterator[Ledger]:
    """The ledger (``--ledger URL`` or the configured one), migrated; an unusable one is one line (exit 2)."""
    from sqlalchemy import exc as sa_exc

    from qubinode_recovery_provider.store import Ledger, LedgerUnavailable, LedgerURLError

    try:
        ledger = Ledger.from_config() if url is None else Ledger(url)
    except LedgerURLError as exc:
        raise UsageError(str(exc)) from None
    ledger.auto_flush_interval = 0
    try:
        yield ledger
    except (LedgerUnavailable, sa_exc.SQLAlchemyError) as exc:
        raise ledger_problem(ledger, exc, "use") from None
    finally:
        ledger.close()


__all__ = ["EXIT_BAD_INPUT", "read_analysis", "read_plan", "register", "run_deliver", "run_escalate"]
