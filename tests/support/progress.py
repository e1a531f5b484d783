"""Per-file progress when the suite runs on several xdist workers.

Without xdist, pytest already prints one line per test file with its ``[ NN%]``. With xdist it prints
only dots, so the controller registers :class:`FileProgress`: a line when a file starts, and one when
its last test is done, with the outcomes, the time it took and the worker::

    -> tests/shadow/test_real_runs.py
    <- tests/shadow/test_real_runs.py: 6 passed in 131.2s [gw1]
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import pytest

#: Worst outcome first: the one a test is reported with when its phases differ.
SEVERITY = ("error", "failed", "passed", "skipped")


def file_of(nodeid: str) -> str:
    """The test file of a node id.

    :param nodeid: ``path::name[params]``
    """
    return nodeid.split("::", 1)[0]


class FileProgress:
    """Prints when each test file starts and ends (see the module docstring).

    :param reporter: pytest's terminal reporter
    """

    def __init__(self, reporter: Any) -> None:
        self.reporter = reporter
        self.totals: Counter[str] = Counter()
        self.done: Counter[str] = Counter()
        self.started: dict[str, float] = {}
        self.outcomes: dict[str, Counter[str]] = defaultdict(Counter)
        self.current: dict[str, str] = {}  # nodeid -> worst outcome so far

    def _line(self, text: str) -> None:
        writer = getattr(self.reporter, "_tw", None)  # end a line of dots first
        if writer is not None and writer.width_of_current_line:
            self.reporter.write("\n")
        self.reporter.write_line(text)

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: Sequence[str]) -> None:
        if not self.totals:  # every worker collects the same items: count them once
            self.totals.update(file_of(nodeid) for nodeid in ids)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        path = file_of(nodeid)
        if path not in self.started:
            self.started[path] = time.monotonic()
            self._line(f"-> {path}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        outcome = _outcome(report)
        if outcome is not None:
            previous = self.current.get(report.nodeid, outcome)
            self.current[report.nodeid] = min(previous, outcome, key=SEVERITY.index)
        if report.when != "teardown":
            return
        path = file_of(report.nodeid)
        self.outcomes[path][self.current.pop(report.nodeid, "passed")] += 1
        self.done[path] += 1
        if self.done[path] == self.totals.get(path, -1):
            counts = ", ".join(f"{n} {o}" for o, n in sorted(self.outcomes[path].items()))
            elapsed = time.monotonic() - self.started.get(path, time.monotonic())
            worker = getattr(getattr(report, "node", None), "gateway", None)
            where = f" [{worker.id}]" if worker is not None else ""
            self._line(f"<- {path}: {counts} in {elapsed:.1f}s{where}")


def _outcome(report: pytest.TestReport) -> str | None:
    """What one phase says about its test: the call's outcome, ``error`` for a failed set-up or
    teardown, ``skipped`` for a skip at set-up; nothing for a set-up or teardown that passed."""
    if report.when == "call":
        return report.outcome
    if report.failed:
        return "error"
    return "skipped" if report.skipped else None
