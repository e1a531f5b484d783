"""What the subcommands share: the one set of input validators, bounded JSON reading, opening inputs.

Every numeric, duration and id flag is checked by an ``argparse`` ``type=`` function from this module,
so a bad value fails while the arguments are parsed, as one line on stderr with exit code 2. JSON read
from a file or stdin goes through :func:`load_json`: nesting deeper than :data:`MAX_JSON_DEPTH`,
integers outside 64-bit range and ``NaN``/``Infinity`` are bad input, reported with the file and line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from qubinode_recovery_provider.cli import UsageError, output

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary

#: Deepest JSON nesting accepted in any input (a diagnosis is 4 levels deep, a REST page 5).
MAX_JSON_DEPTH = 64
#: Largest integer accepted in JSON input and in ids (a signed 64-bit database integer).
MAX_INT = 2**63 - 1
#: Longest single JSON document or batch line read into memory (whole logs go through --log-file).
MAX_JSON_CHARS = 8 * 1024 * 1024
#: Longest ``--since`` window.
MAX_WINDOW = timedelta(days=20 * 366)
#: Longest per-call network or libvirt timeout, and longest task ``--execution-timeout``.
MAX_CALL_TIMEOUT_SECONDS = 600.0
MAX_TASK_TIMEOUT_SECONDS = 30 * 86400.0
#: An incident fingerprint: printable ASCII without spaces.
_FINGERPRINT = re.compile(r"[!-~]{1,128}")
_INTEGER = re.compile(r"[+-]?[0-9]+")
#: First bytes of a log file checked for NUL bytes (compressed or binary files are not logs).
_BINARY_SNIFF_BYTES = 8192


# --- argparse type= validators ----------------------------------------------------------------------


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse ``type=`` accepting a whole number from ``low`` to ``high``.

    :param low: the smallest value accepted.
    :param high: the largest value accepted.
    """

    def parse(text: str) -> int:
        value = text.strip()
        if not _INTEGER.fullmatch(value):
            raise argparse.ArgumentTypeError(f"not a whole number: {_quote(text)}")
        number = int(value) if len(value) <= 25 else (high + 1 if value[0] != "-" else low - 1)
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {_quote(value)}")
        return number

    parse.__name__ = "whole number"
    return parse


def bounded_seconds(high: float) -> Callable[[str], float]:
    """An argparse ``type=`` accepting a finite number of seconds above 0 and at most ``high``.

    :param high: the largest value accepted.
    """

    def parse(text: str) -> float:
        try:
            if len(text) > 40:
                raise ValueError(text)
            value = float(text.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number of seconds: {_quote(text)}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number of seconds, got {_quote(text)}")
        if not 0 < value <= high:
            raise argparse.ArgumentTypeError(f"must be more than 0 and at most {high:g} seconds")
        return value

    parse.__name__ = "seconds"
    return parse


def try_number(text: str) -> int:
    """An argparse ``type=`` accepting a try number (1 to ``models.MAX_TRY_NUMBER``); the models are
    imported only when a command takes one (``diagnose`` starts without pydantic's model building).

    :param text: the flag's value.
    """
    from qubinode_recovery_provider.models import MAX_TRY_NUMBER

    return bounded_int(1, MAX_TRY_NUMBER)(text)


task_timeout = bounded_seconds(MAX_TASK_TIMEOUT_SECONDS)
call_timeout = bounded_seconds(MAX_CALL_TIMEOUT_SECONDS)


def workers(text: str) -> int:
    """``auto`` (one process per CPU, at most 4) or a number of processes from 1 to 64.

    :param text: the flag's value.
    """
    if text.strip() == "auto":
        from qubinode_recovery_provider.shadow.lineage_file import auto_workers

        return auto_workers()
    return bounded_int(1, 64)(text)


#: Longest ``--plugin`` name (a DAG id is at most 250 characters; a CI job name fits too).
MAX_PLUGIN_CHARS = 250
#: Longest ``detect-shadows --scan-hours`` window (the longest ``scan --since`` one).
MAX_SCAN_HOURS = int(MAX_WINDOW.total_seconds() // 3600)
_SWITCH_WORDS = {
    "true": True,
    "yes": True,
    "on": True,
    "1": True,
    "false": False,
    "no": False,
    "off": False,
    "0": False,
}


def plugin_name(text: str) -> str:
    """What failed, as the reference guide's ``--plugin`` names it (a DAG id, a CI job's name): 1 to
    :data:`MAX_PLUGIN_CHARS` printable characters.

    :param text: the flag's value.
    """
    name = text.strip()
    if not name or len(name) > MAX_PLUGIN_CHARS or not name.isprintable():
        raise argparse.ArgumentTypeError(
            f"must be 1 to {MAX_PLUGIN_CHARS} printable characters, got {_quote(text)}"
        )
    return name


def switch(text: str) -> bool:
    """A yes/no flag value: ``true``/``false`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``).

    :param text: the flag's value.
    """
    value = _SWITCH_WORDS.get(text.strip().lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"must be true or false, got {_quote(text)}")
    return value


def scan_hours(text: str) -> int:
    """The reference guide's ``--scan-hours``: a whole number of hours from 1 to :data:`MAX_SCAN_HOURS`.

    :param text: the flag's value.
    """
    return bounded_int(1, MAX_SCAN_HOURS)(text)


def window_start(text: str) -> datetime:
    """A point in time given as a duration back from now (``90s``, ``2h``, ``1d``, ``1h30m``; a bare
    number is minutes) or as an ISO timestamp; durations must be above zero and at most 20 years.

    :param text: the flag's value.
    """
    from qubinode_recovery_provider.shadow.scan import parse_duration

    if len(text) > 64:
        raise argparse.ArgumentTypeError(f"not a duration or a timestamp: {_quote(text)}")
    try:
        window = parse_duration(text)
    except ValueError:
        return _timestamp(text)
    except OverflowError:
        window = MAX_WINDOW * 2
    if not timedelta(0) < window <= MAX_WINDOW:
        raise argparse.ArgumentTypeError(
            f"a duration must be more than 0 and at most {MAX_WINDOW.days} days, got {_quote(text)}"
        )
    return datetime.now(UTC) - window


def _timestamp(text: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a duration or a timestamp: {_quote(text)} (use e.g. 2h or 2025-01-31T12:00Z)"
        ) from None
    try:
        return (stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)).astimezone(UTC)
    except (OverflowError, ValueError):
        raise argparse.ArgumentTypeError(f"timestamp out of range: {_quote(text)}") from None


def incident_ref(text: str) -> str:
    """An incident id (a whole number that fits 63 bits) or a fingerprint (printable ASCII, no spaces,
    at most 128 characters).

    :param text: the argument.
    """
    value = text.strip()
    if value.isascii() and value.isdigit():
        if len(value) > 19 or int(value) > MAX_INT:
            raise argparse.ArgumentTypeError(f"incident id too large: {_quote(value)}")
        return value
    if not _FINGERPRINT.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"not an incident id or fingerprint: {_quote(text)} (a number, or up to 128 characters "
            "of printable ASCII without spaces)"
        )
    return value


def _quote(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


# --- JSON input ---------------------------------------------------------------------------------


class JSONProblem(Exception):
    """A JSON text that is not acceptable input.

    :param reason: what is wrong, without the location.
    :param lineno: the line (1-based) where it is, when known.
    :param colno: the column (1-based) where it is, when known.
    :param syntax: True when the text is not JSON at all (rather than JSON out of bounds).
    """

    def __init__(self, reason: str, lineno: int | None = None, colno: int | None = None, *, syntax: bool):
        super().__init__(reason)
        self.reason = reason
        self.lineno = lineno
        self.colno = colno
        self.syntax = syntax


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > 19 or abs(int(text)) > MAX_INT:
        raise JSONProblem(f"integer out of range ({_quote(text, 24)})", syntax=False)
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JSONProblem(f"number out of range ({_quote(text, 24)})", syntax=False)
    return value


def _json_constant(name: str) -> Any:
    raise JSONProblem(f"{name} is not a number JSON allows", syntax=False)


def decode_json(text: str, max_depth: int = MAX_JSON_DEPTH, *, strict_numbers: bool = True) -> Any:
    """Decode one JSON document within the input bounds.

    :param text: the document.
    :param max_depth: the deepest nesting accepted.
    :param strict_numbers: reject integers outside 64-bit range and floats that overflow (off for
        inputs whose numbers the reader bounds itself; integers of thousands of digits and ``NaN`` /
        ``Infinity`` are rejected either way).
    :raises JSONProblem: on a syntax error, nesting deeper than ``max_depth``, or a number out of bounds.
    """
    try:
        data = json.loads(
            text,
            parse_constant=_json_constant,
            parse_int=_json_int if strict_numbers else None,
            parse_float=_json_float if strict_numbers else None,
        )
    except json.JSONDecodeError as exc:
        raise JSONProblem(f"invalid JSON: {exc.msg}", exc.lineno, exc.colno, syntax=True) from None
    except RecursionError:
        data = _TOO_DEEP
    except ValueError:  # an integer of more digits than Python converts
        raise JSONProblem("integer out of range (thousands of digits)", syntax=False) from None
    if data is _TOO_DEEP or _deeper_than(data, max_depth):
        where = _deep_position(text, max_depth)
        raise JSONProblem(f"JSON nested deeper than {max_depth} levels", *where, syntax=False)
    return data


_TOO_DEEP = object()


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether containers nest deeper than ``limit``: breadth first, one level at a time."""
    level = [value] if type(value) is dict or type(value) is list else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[Any] = []
        for container in level:
            items = container.values() if type(container) is dict else container
            below += [item for item in items if type(item) is dict or type(item) is list]
        level = below
    return False


_OPENERS = frozenset("[{")
_CLOSERS = frozenset("]}")
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _deep_position(text: str, limit: int) -> tuple[int | None, int | None]:
    """Line and column of the bracket that opens level ``limit + 1`` (the text before it is valid)."""
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        piece = match.group()
        if piece in _OPENERS:
            depth += 1
            if depth > limit:
                offset = match.start()
                line_start = text.rfind("\n", 0, offset) + 1
                return text.count("\n", 0, offset) + 1, offset - line_start + 1
        elif piece in _CLOSERS:
            depth -= 1
    return None, None


def load_json(text: str, name: str, line: int | None = None) -> Any:
    """Decode a JSON document read from ``name``; any problem is a one-line :class:`UsageError`.

    :param text: the document (a whole file, or one line of a JSON-lines file).
    :param name: the file it came from, for the message.
    :param line: the line of a JSON-lines file: the message then reads ``name:line: ...`` and gives
        only the column.
    """
    try:
        return decode_json(text)
    except JSONProblem as problem:
        raise UsageError(describe(problem, name, line)) from None


def describe(problem: JSONProblem, name: str, line: int | None = None) -> str:
    """The one-line message for ``problem`` found in ``name`` (at JSON-lines line ``line``).

    :param problem: what :func:`decode_json` raised.
    :param name: the file.
    :param line: the line of a JSON-lines file, if it is one.
    """
    if line is not None:
        where = f" (column {problem.colno})" if problem.colno else ""
        return f"{name}:{line}: {problem.reason}{where}"
    if problem.lineno:
        return f"{name}: {problem.reason} (line {problem.lineno}, column {problem.colno})"
    return f"{name}: {problem.reason}"


def read_document(name: str, what: str) -> str:
    """A whole (small) text input, at most :data:`MAX_JSON_CHARS` characters.

    :param name: the path, or ``-`` for stdin.
    :param what: what the file should be, for the messages (``a diagnosis JSON``).
    """
    with open_input(name) as handle:
        text = _read_text(handle, name, MAX_JSON_CHARS + 1)
    if len(text) > MAX_JSON_CHARS:
        raise UsageError(f"{name}: larger than {MAX_JSON_CHARS // (1024 * 1024)} MiB: not {what}")
    return text


def read_json_lines(name: str) -> Iterator[tuple[int, Any]]:
    """``(line number, decoded value)`` for each non-blank line of a JSON-lines input.

    :param name: the path, or ``-`` for stdin.
    :raises UsageError: naming the line, on a line longer than :data:`MAX_JSON_CHARS` or bad JSON.
    """
    with open_input(name) as handle:
        number = 0
        while True:
            line = _read_line(handle, name)
            if not line:
                return
            number += 1
            if len(line) > MAX_JSON_CHARS:
                raise UsageError(
                    f"{name}:{number}: line longer than {MAX_JSON_CHARS // (1024 * 1024)} MiB "
                    "(give whole logs with --log-file)"
                )
            if line.strip():
                yield number, load_json(line.rstrip("\r\n"), name, number)


def _read_line(handle: TextIO, name: str) -> str:
    try:
        return handle.readline(MAX_JSON_CHARS + 1)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None


def _read_text(handle: TextIO, name: str, limit: int) -> str:
    try:
        return handle.read(limit)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None


# --- opening inputs ---------------------------------------------------------------------------------


@contextlib.contextmanager
def open_input(name: str) -> Iterator[TextIO]:
    """Open a text input file (undecodable bytes replaced), or stdin for ``-``.

    :param name: the path, or ``-``.
    """
    if name == "-":
        if sys.stdin is None:
            raise UsageError("stdin is closed")
        yield sys.stdin
        return
    if os.path.isdir(name):
        raise UsageError(f"{name} is a directory, not a file")
    try:
        handle = open(name, encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    with handle:
        yield handle


def log_file_path(name: str) -> str:
    """The path to stream a log from: ``name`` checked to be a readable text file, or for ``-`` the
    process's stdin as a path (``/dev/fd/N``), so stdin is streamed in bounded memory like a file.

    :param name: the ``--log-file`` value.
    """
    if name == "-":
        return _stdin_path()
    path = Path(name)
    if path.is_dir():
        raise UsageError(f"log file {name} is a directory, not a file")
    if not path.is_file():
        raise UsageError(f"log file {name} does not exist or is not a file")
    try:
        with path.open("rb") as handle:
            head = handle.read(_BINARY_SNIFF_BYTES)
    except OSError as exc:
        raise UsageError(f"cannot read log file {name}: {exc.strerror or exc}") from None
    if b"\0" in head:
        raise UsageError(f"log file {name} looks binary (NUL bytes): give a text log (decompress it first)")
    return name


def _stdin_path() -> str:
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, ValueError, OSError):
        raise UsageError("stdin is not readable: give --log-file PATH") from None
    for candidate in (f"/dev/fd/{fd}", f"/proc/self/fd/{fd}"):
        if os.path.exists(candidate):
            return candidate
    raise UsageError("cannot stream stdin on this system: give --log-file PATH")


# --- the analyzer -----------------------------------------------------------------------------------


def load_library(extra_dirs: Sequence[str] = ()) -> PatternLibrary:
    """The shipped packs, the configured ``pattern_dirs`` and ``extra_dirs``.

    A problem with a directory given on the command line (missing, a broken pack) is a
    :class:`UsageError` naming the file, the pattern and the problem. A problem with a configured
    directory is a warning on stderr (as in a task, where it must not stop the diagnosis), counted.

    :param extra_dirs: more directories of packs (``--patterns-dir``).
    """
    from qubinode_recovery_provider import config
    from qubinode_recovery_provider.diagnosis import PackError, PatternLibrary

    if extra_dirs:
        try:
            PatternLibrary.load(extra_dirs, shipped=False, strict=True)
        except PackError as exc:
            raise UsageError(str(exc)) from None
    library = PatternLibrary.load([*config.get_list("pattern_dirs"), *extra_dirs], strict=False)
    for warning in library.warnings:
        output.warn(warning)
    if library.warning_count > len(library.warnings):
        output.warn(f"{library.warning_count - len(library.warnings)} more pattern library warnings")
    return library


def load_analyzer(extra_dirs: Sequence[str] = (), *, plain_results: bool = False) -> FailureAnalyzer:
    """An analyzer over :func:`load_library`; patterns only (``diagnose --llm`` adds the second opinion).

    :param extra_dirs: more directories of packs.
    :param plain_results: diagnoses as plain dataclasses, for a command that only prints them (no
        pydantic: see :mod:`qubinode_recovery_provider.diagnosis.plain`).
    """
    from qubinode_recovery_provider.diagnosis import FailureAnalyzer

    return FailureAnalyzer(load_library(extra_dirs), use_llm=False, plain_results=plain_results)


def json_and_ledger_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--json`` and ``--ledger URL`` (the commands that read or write the ledger)."""
    parser.add_argument("--json", action="store_true", help="machine output")
    parser.add_argument(
        "--ledger", metavar="URL", help="SQLAlchemy URL of the ledger (default: the configured ledger)"
    )


def verbose_flag(parser: argparse.ArgumentParser) -> None:
    """Add ``--verbose``: every recommended action, command and manual step, not the first few."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show every recommended action, command and manual step (default: the first 3 actions "
        "and 4 commands, [qubinode_recovery] max_actions_shown and max_commands_shown)",
    )


def ledger_problem(ledger: Any, exc: BaseException, verb: str = "read") -> UsageError:
    """The one-line error for a ledger the command cannot use (its URL without the password).

    :param ledger: the ledger
    :param exc: what the database raised
    :param verb: what the command tried: ``read``, ``use``
    """
    reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
    return UsageError(f"cannot {verb} ledger {ledger.url.render_as_string(hide_password=True)}: {reason}")
