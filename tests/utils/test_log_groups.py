"""A line is taken out of Airflow's collapsed "Post Execute" group only inside the task runner's failure
handling, and the group stays balanced."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from qubinode_recovery_provider.utils import log_groups

RUNNER = str(Path("airflow") / "sdk" / "execution_time" / "task_runner.py")


def _as_task_runner(name: str, logger: logging.Logger) -> None:
    """Call ``log_visibly`` from a function called ``name`` in a file that looks like the task runner."""
    source = f"def {name}(log_visibly, logger):\n    log_visibly(logger, 20, 'qubinode: %s', 'network')\n"
    namespace: dict[str, object] = {}
    exec(compile(source, RUNNER, "exec"), namespace)
    namespace[name](log_groups.log_visibly, logger)  # type: ignore[operator]


@pytest.mark.parametrize("step", ["finalize", "_handle_current_task_failed"])
def test_inside_the_runners_failure_handling_the_line_leaves_the_group(step, caplog) -> None:
    logger = logging.getLogger("qrp.test.log_groups")
    with caplog.at_level(logging.INFO, logger=logger.name):
        _as_task_runner(step, logger)
    assert [r.getMessage() for r in caplog.records] == [
        "::endgroup::",
        "qubinode: network",
        "::group::Post Execute",
    ]


def test_anywhere_else_it_is_a_plain_line(caplog) -> None:
    logger = logging.getLogger("qrp.test.log_groups")
    with caplog.at_level(logging.INFO, logger=logger.name):
        _as_task_runner("execute", logger)  # the runner's file, but not a step inside the group
        log_groups.log_visibly(logger, logging.INFO, "plain %d", 1)
    assert [r.getMessage() for r in caplog.records] == ["qubinode: network", "plain 1"]
