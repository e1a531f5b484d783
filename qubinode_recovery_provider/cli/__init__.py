"""The ``qubinode-recovery`` command line.

Every subcommand lives in its own module of this package with a ``register(subparsers)`` function that
adds its parser and sets ``func`` (``args -> exit code``). Exit codes follow the brief: 0 success, 1 the
command ran and found a problem it reports, 2 bad input with a one-line reason on stderr -- argparse's
own errors included (:class:`ArgumentParser` prints one line, not the usage block). Flag values are
checked by the validators of :mod:`.common`; everything printed goes through :mod:`.output`.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Sequence
from typing import NoReturn

from qubinode_recovery_provider import __version__
from qubinode_recovery_provider.config import ConfigError

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_BAD_INPUT = 2
#: The interpreter's own exit code when stdout cannot be flushed at exit (``console_main`` keeps it).
EXIT_OUTPUT_LOST = 120

SUBCOMMAND_MODULES = (
    "diagnose",
    "patterns",
    "plan",
    "incidents",
    "scan",
    "detect_shadows",
    "escalate",
    "findings",
    "dags",
    "ledger",
)


#: The module of each subcommand that is not named like its module, so that a run imports only the
#: module of the command it runs (start-up time: see ``bench/bench_startup.py``).
COMMAND_MODULES = {"detect-shadows": "detect_shadows", "escalations": "escalate"}


class UsageError(Exception):
    """Bad input from the user: reported as one line on stderr with exit code 2."""


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose errors are one cleaned line on stderr (exit 2), pointing to ``--help``."""

    def error(self, message: str) -> NoReturn:
        """Report a command-line error as one line and exit with code 2.

        :param message: argparse's reason.
        """
        from qubinode_recovery_provider.cli import output

        output.error(f"{message} (see {self.prog} --help)", prog=self.prog)
        self.exit(EXIT_BAD_INPUT)

    def _get_formatter(self) -> argparse.HelpFormatter:
        # argparse asks shutil for the terminal width whenever it builds a formatter, which it does for
        # every argument added: importing shutil (and bz2, lzma, zlib) on every run that prints no help
        return self.formatter_class(prog=self.prog, width=_help_width())  # type: ignore[call-arg]


def _help_width() -> int:
    """The width argparse gives help text: ``shutil.get_terminal_size().columns - 2``, read the same way
    (``COLUMNS``, then the terminal of stdout, then 80)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return (columns if columns > 0 else 80) - 2


def _command_module(argv: Sequence[str]) -> str | None:
    """The module of the subcommand ``argv`` runs, or None (no command, an unknown one, ``--help``)."""
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command is None:
        return None
    module = COMMAND_MODULES.get(command, command)
    return module if module in SUBCOMMAND_MODULES else None


def _build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or with only the one of module ``only``.

    :param only: the module of the subcommand being run (the others are not imported).
    """
    parser = ArgumentParser(
        prog="qubinode-recovery",
        description="Diagnose failed infrastructure tasks, plan recovery, inspect incidents.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in SUBCOMMAND_MODULES if only is None else (only,):
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # subcommand not part of this build
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    :param argv: the arguments (default ``sys.argv[1:]``).
    :return: 0, 1 or 2 (also for argparse's own errors, and 0 after ``--help``), never ``SystemExit``.
    """
    from qubinode_recovery_provider.cli import output

    arguments = sys.argv[1:] if argv is None else list(argv)
    parser = _build_parser(_command_module(arguments))
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    try:
        return int(args.func(args))
    except (UsageError, ConfigError) as exc:
        output.error(str(exc))
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


def console_main() -> NoReturn:
    """The ``qubinode-recovery`` program: :func:`main`, then a quick exit.

    The interpreter's own teardown (freeing what modules and caches still hold, returning the
    allocator's arenas) took 0.11-0.16 s of wall after the last line of a 10,000-run scan
    (``docs/benchmarks.md``). Once the output is flushed and the exit
    handlers have run (logging, multiprocessing), the process ends without that teardown; while a
    non-daemon thread other than the main one still runs, it exits the usual way, which waits for it
    (daemon threads, such as an abandoned libvirt listing, end with the process either way).
    """
    code = _flush_output(main())
    main_thread = threading.main_thread()
    if any(t is not main_thread and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()
    os._exit(_flush_output(code))


def _flush_output(code: int) -> int:
    """Flush stdout and stderr; return the exit code. A reader that went away: stdout to /dev/null, as
    :func:`main` does. Output that cannot be written (a full disk): one line on stderr and
    :data:`EXIT_OUTPUT_LOST`, as the usual exit does, and stdout to /dev/null (the error once).

    :param code: the exit code so far.
    """
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except OSError as exc:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            sys.stderr.write(f"qubinode-recovery: error: the output could not be written: {exc}\n")
        _silence_stdout()
        code = EXIT_OUTPUT_LOST
    except (ValueError, AttributeError):
        pass
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sys.stderr.flush()
    return code


def _silence_stdout() -> None:
    """After the reader of stdout went away, point stdout at /dev/null so the interpreter's final
    flush does not print a second broken-pipe error."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


if __name__ == "__main__":  # pragma: no cover
    console_main()
