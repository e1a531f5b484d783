"""Put a line where Airflow's default log view shows it.

After a task failed, Airflow's task runner logs everything that follows (the retry policy's decision,
the failure callbacks, the listeners) inside a "Post Execute" group (``::group::Post Execute`` ...
``::endgroup::``), which the UI shows collapsed. :func:`log_visibly` closes that group for one line
and opens it again, so the line sits at the top level of the log view while the group stays balanced.
Anywhere else (the DAG processor's callbacks, the CLI, tests) it is a plain log call.
"""

from __future__ import annotations

import logging
import os
import sys
from types import FrameType
from typing import Any

GROUP_NAME = "Post Execute"
_RUNNER_FILE = os.path.join("execution_time", "task_runner.py")
#: The task runner's steps that run inside the group: the retry policy, then the callbacks.
_RUNNER_STEPS = frozenset({"_handle_current_task_failed", "finalize"})
_MAX_FRAMES = 64


def in_post_execute_group() -> bool:
    """Whether this call comes from the task runner's failure handling or its ``finalize``."""
    frame: FrameType | None = sys._getframe(1)
    for _ in range(_MAX_FRAMES):
        if frame is None:
            return False
        code = frame.f_code
        if code.co_name in _RUNNER_STEPS and code.co_filename.endswith(_RUNNER_FILE):
            return True
        frame = frame.f_back
    return False


def log_visibly(logger: logging.Logger, level: int, message: str, *args: Any) -> None:
    """Log one line outside Airflow's collapsed "Post Execute" group (see the module docstring).

    :param logger: the logger.
    :param level: the level.
    :param message: the message, ``%`` style with ``args``.
    """
    if not in_post_execute_group():
        logger.log(level, message, *args)
        return
    logger.info("::endgroup::")
    try:
        logger.log(level, message, *args)
    finally:
        logger.info("::group::%s", GROUP_NAME)


__all__ = ["in_post_execute_group", "log_visibly"]
