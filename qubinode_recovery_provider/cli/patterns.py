"""``qubinode-recovery patterns list | check | suggest``."""

from __future__ import annotations

import argparse
from pathlib import Path

from qubinode_recovery_provider.cli import EXIT_OK, EXIT_PROBLEM, UsageError, output
from qubinode_recovery_provider.cli.common import bounded_int, load_analyzer, load_library

MAX_GROUP_SIZE = 1_000_000


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("patterns", help="list, check or suggest known-error patterns")
    sub = parser.add_subparsers(dest="patterns_command", metavar="ACTION", required=True)

    listing = sub.add_parser("list", help="list every loaded pattern")
    listing.add_argument("--json", action="store_true", help="machine output (JSON lines)")
    listing.add_argument("--patterns-dir", action="append", default=[], metavar="DIR")
    listing.set_defaults(func=run_list)

    check = sub.add_parser("check", help="validate every pack and run every example (exit 1 on problems)")
    check.add_argument("--pack", action="append", default=[], metavar="FILE", help="also check this pack")
    check.add_argument("--patterns-dir", action="append", default=[], metavar="DIR")
    check.add_argument("--json", action="store_true", help="machine output")
    check.set_defaults(func=run_check)

    suggest = sub.add_parser(
        "suggest", help="group failures no pattern explains by log template (Drain3) and draft patterns"
    )
    suggest.add_argument(
        "--batch", required=True, metavar="FILE.jsonl", help="failures, one JSON object per line"
    )
    suggest.add_argument(
        "--min-size",
        type=bounded_int(1, MAX_GROUP_SIZE),
        default=2,
        metavar="N",
        help="smallest group worth a pattern (default 2)",
    )
    suggest.add_argument("--patterns-dir", action="append", default=[], metavar="DIR")
    suggest.add_argument("--json", action="store_true", help="machine output (JSON lines)")
    suggest.set_defaults(func=run_suggest)


def run_list(args: argparse.Namespace) -> int:
    """Print every loaded pattern.

    :param args: the parsed arguments.
    """
    library = load_library(args.patterns_dir)
    for cp in library:
        p = cp.pattern
        if args.json:
            row = {
                "id": p.id,
                "pack": p.pack,
                "category": p.category.value,
                "severity": p.severity.value,
                "retryable": p.retryable,
                "role": p.role,
                "description": p.description,
            }
            output.write_json(row)
        else:
            output.write(
                f"{p.id:<18} {p.category.value:<20} {p.severity.value:<9} {p.pack:<12} {p.description}\n"
            )
    if not args.json:
        output.write(f"{len(library)} patterns\n")
    return EXIT_OK


def run_check(args: argparse.Namespace) -> int:
    """Validate every pack and run every example; exit 1 on any problem.

    :param args: the parsed arguments.
    """
    from qubinode_recovery_provider import config
    from qubinode_recovery_provider.diagnosis.checker import check_packs, default_pack_files

    missing = [f for f in args.pack if not Path(f).is_file()]
    if missing:
        raise UsageError(f"pack file {missing[0]} does not exist or is not a file")
    files = default_pack_files([*config.get_list("pattern_dirs"), *args.patterns_dir], args.pack)
    report = check_packs(files)
    if args.json:
        output.write_json(
            {
                "ok": report.ok,
                "packs": report.packs,
                "patterns": report.patterns,
                "examples": report.examples,
                "problems": report.problems,
            }
        )
    else:
        for problem in report.problems:
            output.write(problem + "\n")
        verdict = "all examples pass" if report.ok else f"{len(report.problems)} problems"
        output.write(
            f"checked {report.patterns} patterns in {report.packs} packs, "
            f"{report.examples} examples: {verdict}\n"
        )
    return EXIT_OK if report.ok else EXIT_PROBLEM


def run_suggest(args: argparse.Namespace) -> int:
    """Draft patterns for groups of failures no pattern explains; exit 1 when there are drafts.

    :param args: the parsed arguments.
    """
    from qubinode_recovery_provider.cli.diagnose import read_batch
    from qubinode_recovery_provider.diagnosis.suggest import suggest_patterns

    records = read_batch(args.batch)
    analyzer = load_analyzer(args.patterns_dir)
    suggestions = suggest_patterns(analyzer, [r["text"] for r in records], min_size=args.min_size)
    for s in suggestions:
        if args.json:
            output.write_json(s)
        else:
            output.write(f"# {s['size']} failures share: {s['template']}\n{s['yaml']}\n")
    if not suggestions and not args.json:
        output.write("no group of unexplained failures is large enough for a pattern\n")
    return EXIT_PROBLEM if suggestions else EXIT_OK
