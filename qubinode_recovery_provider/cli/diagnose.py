"""``qubinode-recovery diagnose``: diagnose an error text, a log file or a batch of failures."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.cli import EXIT_OK, UsageError, output
from qubinode_recovery_provider.cli.common import (
    load_analyzer,
    log_file_path,
    plugin_name,
    read_json_lines,
    verbose_flag,
)
from qubinode_recovery_provider.cli.render import render_diagnosis
from qubinode_recovery_provider.output_limits import OutputLimits, diagnosis_json

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis.llm import SecondOpinion
    from qubinode_recovery_provider.models import Diagnosis, DiagnosticContext

BATCH_FIELDS = ("id", "dag_id", "task_id")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="diagnose a failure text, a log file or a JSON-lines batch",
        description="Diagnose the text given. The machine's own services and resources are probed only "
        "with --probe, since the failure usually happened on another host.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--error", metavar="TEXT", help="the error message or log excerpt")
    source.add_argument("--log-file", metavar="PATH", help="a log file of any size ('-' for stdin)")
    source.add_argument(
        "--batch",
        metavar="FILE.jsonl",
        help="one JSON object per line with 'text' (and optional 'id', 'dag_id', 'task_id'); "
        "prints one JSON diagnosis per line, in input order ('-' for stdin)",
    )
    parser.add_argument("--json", action="store_true", help="machine output (JSON)")
    verbose_flag(parser)
    parser.add_argument(
        "--probe", action="store_true", help="also probe this machine's services and resources"
    )
    parser.add_argument(
        "--patterns-dir", action="append", default=[], metavar="DIR", help="extra pattern packs"
    )
    guide = parser.add_argument_group("the reference guide's form (--error or --log-file)")
    guide.add_argument(
        "--plugin",
        type=plugin_name,
        metavar="NAME",
        help="what failed (a DAG id, a CI job's name): recorded as the diagnosis's dag_id",
    )
    guide.add_argument(
        "--output",
        metavar="FILE",
        help="also write the diagnosis JSON to FILE (what 'plan --analysis-file' reads)",
    )
    parser.add_argument(
        "--llm",
        action="store_true",
        help="ask the configured LLM for a second opinion when the patterns are unsure (docs/llm.md)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Diagnose what the arguments name and print the result.

    :param args: the parsed arguments.
    """
    opinion = _llm_opinion() if args.llm else None
    limits = OutputLimits.configured(verbose=args.verbose)
    if args.batch is not None:
        if args.plugin is not None or args.output is not None:
            raise UsageError("--plugin and --output are for one failure (--error or --log-file), not --batch")
        records = read_batch(args.batch)
        analyzer = load_analyzer(args.patterns_dir, plain_results=not args.llm)
        analyzer.second_opinion = opinion
        context = _probe() if args.probe else None
        for record in records:
            diagnosis = analyzer.analyze(record["text"], context, diagnosis_id=record["id"])
            row: dict[str, Any] = {
                **diagnosis_json(diagnosis, limits),
                **{k: record[k] for k in BATCH_FIELDS if k in record},
            }
            output.write_json(row)
        return EXIT_OK
    diagnosis = _diagnose_one(args, opinion)
    if args.plugin is not None:
        diagnosis.dag_id = args.plugin
    if args.output is not None:
        output.save_json(args.output, diagnosis.to_json_dict())
    if args.json:
        output.write_json(diagnosis_json(diagnosis, limits), indent=2)
    else:
        output.write(_banner(f"Failure Diagnosis: {args.plugin}") if args.plugin else "")
        output.write(render_diagnosis(diagnosis, limits))
    if args.output is not None:
        _saved(f"[OK] Analysis saved to {args.output}", args.json)
    return EXIT_OK


def _saved(line: str, machine_output: bool) -> None:
    """Say where ``--output`` went: on stderr when stdout is JSON, else at the end of the report."""
    if machine_output:
        output.notice(line)
    else:
        output.write(f"\n{line}\n")


def _banner(title: str) -> str:
    """The reference guide's heading: the title between two rules."""
    rule = "=" * 60
    return f"{rule}\n{title}\n{rule}\n\n"


def _diagnose_one(args: argparse.Namespace, opinion: SecondOpinion | None) -> Diagnosis:
    if args.error is not None:
        if not args.error.strip():
            raise UsageError("--error is empty: give the error message or log excerpt to diagnose")
        analyzer = load_analyzer(args.patterns_dir, plain_results=not args.llm)
        analyzer.second_opinion = opinion
        return analyzer.analyze(args.error, _probe() if args.probe else None)
    path = log_file_path(args.log_file)
    analyzer = load_analyzer(args.patterns_dir, plain_results=not args.llm)
    analyzer.second_opinion = opinion
    context = _probe() if args.probe else None
    shown = "stdin" if args.log_file == "-" else args.log_file
    try:
        return analyzer.analyze_file(path, context)
    except OSError as exc:
        raise UsageError(f"cannot read log file {shown}: {exc.strerror or exc}") from None


def read_batch(name: str) -> list[dict[str, Any]]:
    """Read and validate every batch line before diagnosing any: bad input fails with its line number;
    a batch without a single record is bad input too.

    :param name: the JSON-lines file, or ``-`` for stdin.
    """
    records = list(_parse_batch(name))
    if not records:
        raise UsageError(f"{name}: no records (one JSON object per line, each with 'text')")
    return records


def _parse_batch(name: str) -> Iterator[dict[str, Any]]:
    for number, record in read_json_lines(name):
        if not isinstance(record, dict):
            raise UsageError(f"{name}:{number}: each line must be a JSON object")
        if not isinstance(record.get("text"), str):
            raise UsageError(f"{name}:{number}: 'text' is missing or not a string")
        for key in BATCH_FIELDS:
            if key in record and record[key] is not None and not isinstance(record[key], str | int):
                raise UsageError(f"{name}:{number}: '{key}' must be a string")
        record["id"] = str(record.get("id") if record.get("id") is not None else number)
        yield record


def _llm_opinion() -> SecondOpinion:
    """The configured LLM second opinion for ``--llm``; a usage error when there is none."""
    from qubinode_recovery_provider import config
    from qubinode_recovery_provider.diagnosis.llm import SecondOpinion

    try:
        opinion = SecondOpinion.from_config()
    except config.ConfigError as exc:
        raise UsageError(f"--llm: {exc}") from None
    if opinion is None:
        raise UsageError(
            "--llm: no LLM is configured: set [qubinode_recovery] llm_model (with llm_base_url for a local "
            "OpenAI-compatible server) or llm_conn_id"
        )
    return opinion


def _probe() -> DiagnosticContext:
    from qubinode_recovery_provider.diagnosis.context import collect_context

    return collect_context()
