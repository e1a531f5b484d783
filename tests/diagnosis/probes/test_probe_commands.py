"""Tests of the bounded probe runner (qubinode_recovery_provider.diagnosis.probes.commands)."""

from __future__ import annotations

import threading

from support.probe_fakes import join_probe_threads

from qubinode_recovery_provider.diagnosis.probes.commands import run_bounded


def test_run_bounded_reports_errors_and_stragglers() -> None:
    def fail() -> int:
        raise RuntimeError("probe exploded")

    release = threading.Event()
    try:
        outcomes = run_bounded([lambda: 1, fail, lambda: release.wait(30)], timeout=0.3)
    finally:
        release.set()  # the straggler ends with the test
    join_probe_threads()
    assert outcomes[0] == ("done", 1)
    assert outcomes[1][0] == "error:RuntimeError: probe exploded"
    assert outcomes[2][0] == "running"
