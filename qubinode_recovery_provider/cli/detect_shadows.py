"""``qubinode-recovery detect-shadows``: the reference guide's name of ``scan``.

``detect-shadows --scan-hours N`` is ``scan --since Nh``; every other ``scan`` flag works the same (the
parser is built from ``scan``'s own), and so do its output and exit codes (0 no finding, 1 findings, 2 bad
input).
"""

from __future__ import annotations

import argparse

from qubinode_recovery_provider.cli import UsageError, scan
from qubinode_recovery_provider.cli.common import MAX_SCAN_HOURS, scan_hours, window_start


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detect-shadows",
        parents=[_scan_parser()],
        add_help=False,
        help="the reference guide's name of 'scan' (--scan-hours N is --since Nh)",
        description="Find shadow errors, as 'scan' does; --scan-hours N is 'scan --since Nh'.",
    )
    parser.add_argument(
        "--scan-hours",
        type=scan_hours,
        metavar="N",
        help=f"runs that ended in the last N hours, 1 to {MAX_SCAN_HOURS} (default: {scan.DEFAULT_SINCE})",
    )
    parser.set_defaults(func=run)


def _scan_parser() -> argparse.ArgumentParser:
    """``scan``'s parser, built by ``scan.register`` itself, so the two never drift apart."""
    holder = argparse.ArgumentParser(add_help=False)
    scan.register(holder.add_subparsers())
    action = next(a for a in holder._actions if isinstance(a, argparse._SubParsersAction))
    parser: argparse.ArgumentParser = action.choices["scan"]
    return parser


def run(args: argparse.Namespace) -> int:
    """Translate ``--scan-hours`` into ``--since`` and scan.

    :param args: the parsed arguments.
    """
    if args.scan_hours is not None:
        if args.since is not None:
            raise UsageError("give --scan-hours or --since, not both")
        args.since = window_start(f"{args.scan_hours}h")
    return scan.run(args)
