"""Helpers shared by the subcommands: loading the analyzer and opening inputs, with one-line errors."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, TextIO

from qubinode_recovery_provider.cli import UsageError

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis import FailureAnalyzer, PatternLibrary


def load_library(extra_dirs: Sequence[str] = ()) -> PatternLibrary:
    """The shipped packs, the configured ``pattern_dirs`` and ``extra_dirs``; a broken pack is a
    :class:`UsageError` naming the file, the pattern and the problem."""
    from qubinode_recovery_provider import config
    from qubinode_recovery_provider.diagnosis import PackError, PatternLibrary

    try:
        return PatternLibrary.load([*config.get_list("pattern_dirs"), *extra_dirs])
    except PackError as exc:
        raise UsageError(str(exc)) from None


def load_analyzer(extra_dirs: Sequence[str] = ()) -> FailureAnalyzer:
    from qubinode_recovery_provider.diagnosis import FailureAnalyzer

    return FailureAnalyzer(load_library(extra_dirs))


@contextlib.contextmanager
def open_input(name: str) -> Iterator[TextIO]:
    """Open a text input file, or stdin for ``-``."""
    if name == "-":
        yield sys.stdin
        return
    try:
        handle = open(name, encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None
    with handle:
        yield handle
