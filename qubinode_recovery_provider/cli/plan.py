"""``qubinode-recovery plan``: a ranked recovery plan for a diagnosis or for a new error text.

``--analysis-file FILE`` reads a diagnosis as printed by ``diagnose --json`` or written by ``diagnose
--output`` (``-`` for stdin); ``--error TEXT`` diagnoses the text first. The plan is printed as Markdown
(default) or JSON; ``--output FILE`` also writes it to a file, as JSON when the name ends in ``.json``,
else as Markdown. ``--decide`` adds the decision of :func:`~qubinode_recovery_provider.recovery.decision.
decide` for the recommended option (run unattended, ask a person, or escalate), as a job outside Airflow
(CI) would act on it; the plan is then made with the actions such a job has (see
:func:`runtime_outside_airflow`). Nothing is executed. Exit codes: 0 plan printed, 2 bad input (one line
on stderr).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from qubinode_recovery_provider.cli import EXIT_OK, UsageError, output
from qubinode_recovery_provider.cli.common import (
    load_analyzer,
    load_json,
    read_document,
    switch,
    task_timeout,
    try_number,
    verbose_flag,
)
from qubinode_recovery_provider.models import MAX_TRY_NUMBER, Diagnosis
from qubinode_recovery_provider.output_limits import OutputLimits, plan_data

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import RecoveryPlan
    from qubinode_recovery_provider.recovery.actions import ActionResult
    from qubinode_recovery_provider.recovery.decision import RecoveryDecision
    from qubinode_recovery_provider.runtime import Runtime


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="plan the recovery of a diagnosed failure (nothing is executed)",
        description="Print a ranked recovery plan: retry, wait, manual fix, rollback, skip, escalate.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--analysis-file",
        metavar="FILE",
        help="a diagnosis JSON as printed by 'diagnose --json' ('-': stdin)",
    )
    source.add_argument("--error", metavar="TEXT", help="an error message or log excerpt to diagnose first")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="machine output (JSON)")
    output.add_argument("--markdown", action="store_true", help="Markdown (the default)")
    task = parser.add_argument_group("the failed task (optional; ids default to the diagnosis's)")
    task.add_argument("--dag-id", metavar="ID")
    task.add_argument("--task-id", metavar="ID")
    task.add_argument("--run-id", metavar="ID")
    task.add_argument(
        "--try-number", type=try_number, metavar="N", help=f"the try that failed (1 to {MAX_TRY_NUMBER})"
    )
    task.add_argument(
        "--execution-timeout",
        type=task_timeout,
        metavar="SECONDS",
        help="the task's execution_timeout (finite, above 0, at most 30 days)",
    )
    parser.add_argument(
        "--patterns-dir", action="append", default=[], metavar="DIR", help="extra pattern packs (--error)"
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="also write the plan to FILE: JSON with every step when FILE ends in .json, else the Markdown "
        "printed",
    )
    verbose_flag(parser)
    decision = parser.add_argument_group("the decision, for a job outside Airflow (CI)")
    decision.add_argument(
        "--decide",
        action="store_true",
        help="add the decision for the recommended option: auto, approval or escalate",
    )
    decision.add_argument(
        "--enable-auto-recovery",
        type=switch,
        metavar="true|false",
        help="this run's automatic-recovery switch for --decide (default: the configured one)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Plan the recovery and print it.

    :param args: the parsed arguments.
    """
    from qubinode_recovery_provider import config
    from qubinode_recovery_provider.recovery import RecoveryPlanner, plan_to_dict, plan_to_markdown

    if args.enable_auto_recovery is not None and not args.decide:
        raise UsageError("--enable-auto-recovery is the switch of --decide; add --decide")
    diagnosis = _diagnosis(args)
    try:
        if args.decide:
            rt = runtime_outside_airflow()
            plan = rt.planner(learn=False).plan_recovery(diagnosis, _task(args))
            decision = decide_outside_airflow(plan, rt, args.enable_auto_recovery)
        else:
            plan, decision = RecoveryPlanner(events=None).plan_recovery(diagnosis, _task(args)), None
    except config.ConfigError as exc:
        raise UsageError(str(exc)) from None
    data = plan_to_dict(plan)
    limits = OutputLimits.configured(verbose=args.verbose)
    shown = plan_to_markdown(plan, diagnosis=diagnosis, level=1, limits=limits)
    if decision is not None:
        data["decision"] = {**decision.to_dict(), "summary": decision.summary}
        shown += f"\n## Decision\n\n{decision.summary}\n"
    if args.output is not None:  # a JSON file keeps every step; Markdown is what is shown
        if args.output.lower().endswith(".json"):
            output.save_json(args.output, data)
        else:
            output.save(args.output, shown)
    if args.json:
        output.write_json(plan_data(data, limits), indent=2)
    else:
        output.write(shown)
    if args.output is not None:
        saved = f"[OK] Recovery plan saved to {args.output}"
        if args.json:
            output.notice(saved)
        else:
            output.write(f"\n{saved}\n")
    return EXIT_OK


def runtime_outside_airflow() -> Runtime:
    """The runtime of a job outside Airflow (CI): ``retry-from-failure`` counts as available (the calling
    job re-runs the failed step itself), ``wait-for-service`` does not (no probe of the failed host), and
    there is no ledger to learn from or to hold a circuit breaker."""
    from qubinode_recovery_provider.runtime import Runtime

    return Runtime(retry=_rerun_by_the_caller, probe=None)


def decide_outside_airflow(plan: RecoveryPlan, rt: Runtime, auto_recovery: bool | None) -> RecoveryDecision:
    """The decision for the plan's recommended option: the one rule
    (:func:`~qubinode_recovery_provider.recovery.decision.decide`) with the configured policy, the actions
    of :func:`runtime_outside_airflow` and this run's switch.

    :param plan: the plan (made by ``rt``'s planner)
    :param rt: the runtime of :func:`runtime_outside_airflow`
    :param auto_recovery: this run's switch (None: the configured one alone)
    """
    from qubinode_recovery_provider.recovery.decision import decide

    return decide(plan, rt.registry, rt.policy(), run_auto_recovery=auto_recovery)


def _rerun_by_the_caller(_args: Any) -> ActionResult:
    """``retry-from-failure`` outside Airflow: the job that called the CLI re-runs; nothing runs here."""
    from qubinode_recovery_provider.recovery.actions import ActionResult

    return ActionResult(False, "outside Airflow the calling job re-runs the failed step; nothing ran here")


def _diagnosis(args: argparse.Namespace) -> Diagnosis:
    if args.error is not None:
        if not args.error.strip():
            raise UsageError("--error is empty: give the error message or log excerpt to plan for")
        return load_analyzer(args.patterns_dir).analyze(args.error)
    return read_diagnosis(args.analysis_file)


def read_diagnosis(name: str) -> Diagnosis:
    """Read and validate a diagnosis JSON file; any problem is a one-line :class:`UsageError`.

    :param name: the file, or ``-`` for stdin.
    """
    data = load_json(read_document(name, "a diagnosis JSON"), name)
    if not isinstance(data, dict):
        raise UsageError(f"{name}: expected one diagnosis JSON object, got {type(data).__name__}")
    try:
        return Diagnosis.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())) or "diagnosis"
        raise UsageError(f"{name}: not a diagnosis: {where}: {first.get('msg', 'invalid')}") from None


def _task(args: argparse.Namespace) -> Any:
    from qubinode_recovery_provider.models import TaskConfig

    return TaskConfig(
        dag_id=args.dag_id,
        task_id=args.task_id,
        run_id=args.run_id,
        try_number=args.try_number,
        execution_timeout_seconds=args.execution_timeout,
    )
