"""The one way the CLI prints: every byte it writes passes through redaction and control stripping.

Text and JSON alike, stdout and stderr alike: terminal control sequences are removed first (so an
escape sequence cannot split a secret's name and slip past the rules), then secrets are masked with
:mod:`qubinode_recovery_provider.redaction`. Subcommands never call ``print`` or ``sys.stdout.write``
themselves.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from qubinode_recovery_provider.redaction import redact, redact_data, strip_control

PROG = "qubinode-recovery"

#: An error or warning line is clipped to this many characters (input echoed in a message is hostile).
MAX_MESSAGE_CHARS = 500

#: Containers nested deeper than this in printed JSON are not descended into (replaced by ``"***"``).
MAX_OUTPUT_DEPTH = 64


def clean_text(text: str) -> str:
    """Text safe to print: control sequences stripped, then secrets masked.

    :param text: anything about to leave the process.
    """
    return redact(strip_control(text))


def clean_data(value: Any) -> Any:
    """JSON-like data safe to print: every string and key stripped of control sequences, every value
    passed through :func:`~qubinode_recovery_provider.redaction.redact_data`.

    :param value: dicts, lists, tuples, strings, numbers, booleans, None.
    """
    return redact_data(_strip_data(value, MAX_OUTPUT_DEPTH), max_depth=MAX_OUTPUT_DEPTH)


def _strip_data(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return strip_control(value)
    if depth <= 0 and isinstance(value, dict | list | tuple):
        return "***"
    if isinstance(value, dict):
        return {strip_control(str(k)): _strip_data(v, depth - 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strip_data(v, depth - 1) for v in value]
    return value


def one_line(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cleaned, on one line, at most ``limit`` characters.

    :param text: a message that may echo user input.
    :param limit: the longest line kept.
    """
    flat = " ".join(clean_text(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def write(text: str, stream: TextIO | None = None) -> None:
    """Print text (as given: it carries its own newlines), cleaned.

    :param text: the report, table or Markdown document.
    :param stream: where to (default stdout).
    """
    (stream or sys.stdout).write(clean_text(text))


def write_json(data: Any, *, indent: int | None = None, stream: TextIO | None = None) -> None:
    """Print one JSON document (one line unless ``indent``), cleaned, followed by a newline.

    :param data: JSON-ready data.
    :param indent: pretty-printing indentation; None for one line (JSON lines).
    :param stream: where to (default stdout).
    """
    (stream or sys.stdout).write(_json_text(data, indent))


def save(path: str, text: str) -> None:
    """Write a document to a file (``--output``), cleaned like everything printed.

    :param path: the file (created or replaced).
    :param text: the document.
    :raises UsageError: when the file cannot be written (one line, exit 2).
    """
    _write_file(path, clean_text(text))


def save_json(path: str, data: Any) -> None:
    """Write one JSON document to a file (``--output``), cleaned as :func:`write_json` prints it.

    :param path: the file (created or replaced).
    :param data: JSON-ready data.
    :raises UsageError: when the file cannot be written (one line, exit 2).
    """
    _write_file(path, _json_text(data, 2))


def _write_file(path: str, cleaned: str) -> None:
    from qubinode_recovery_provider.cli import UsageError

    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(cleaned)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _json_text(data: Any, indent: int | None) -> str:
    return json.dumps(clean_data(data), ensure_ascii=False, indent=indent) + "\n"


def warn(message: str) -> None:
    """One warning line on stderr: ``qubinode-recovery: warning: ...``.

    :param message: the warning.
    """
    sys.stderr.write(f"{PROG}: warning: {one_line(message)}\n")


def notice(message: str) -> None:
    """One informational line on stderr, without a prefix (``recorded 3 findings``).

    :param message: the line.
    """
    sys.stderr.write(one_line(message) + "\n")


def error(message: str, prog: str = PROG) -> None:
    """One error line on stderr: ``<prog>: error: ...``.

    :param message: the reason.
    :param prog: the program (or subcommand) name in front of it.
    """
    sys.stderr.write(f"{one_line(prog, 80)}: error: {one_line(message)}\n")
