"""The ``qubinode-recovery`` command line.

Every subcommand lives in its own module of this package with a ``register(subparsers)`` function that
adds its parser and sets ``func`` (``args -> exit code``). Exit codes follow the brief: 0 success, 1 the
command ran and found a problem it reports, 2 bad input with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from qubinode_recovery_provider import __version__
from qubinode_recovery_provider.config import ConfigError

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_BAD_INPUT = 2

SUBCOMMAND_MODULES = ("diagnose", "patterns", "plan", "incidents", "scan")


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr with exit code 2."""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qubinode-recovery",
        description="Diagnose failed infrastructure tasks, plan recovery, inspect incidents.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # subcommand not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (UsageError, ConfigError) as exc:
        print(f"qubinode-recovery: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
