"""Time limits for work that runs inside a user's task process (the failure callback, the retry policy).

A :class:`Deadline` is a point in time that the steps of one piece of work share out; :func:`call_within`
runs one callable in a daemon thread and stops waiting for it when its time is up, so a step that cannot be
interrupted (a hanging probe, a database lock) never holds the caller. The steps themselves are linear-time
and bounded per call, so a thread that is given up on does not keep the interpreter lock for long.

Plain Python, no Airflow.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: The shortest time a step is given, however little is left.
MIN_STEP_SECONDS = 0.2


class Deadline:
    """A point in time, ``seconds`` from now, that steps share out.

    :param seconds: from now; negative values mean "already passed".
    """

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.end - time.monotonic())

    @property
    def expired(self) -> bool:
        """Whether the time is up."""
        return time.monotonic() >= self.end

    def share(self, fraction: float, cap: float | None = None, floor: float = MIN_STEP_SECONDS) -> float:
        """A step's time: ``fraction`` of what is left, at least ``floor`` and at most ``cap``.

        :param fraction: the share of the remaining time.
        :param cap: the most seconds, if any.
        :param floor: the fewest seconds.
        """
        value = max(floor, self.remaining() * fraction)
        return min(value, cap) if cap is not None else value


@dataclass
class Bounded(Generic[T]):
    """What :func:`call_within` got back.

    :param done: the callable returned or raised in time.
    :param value: its return value (when it returned in time).
    :param error: the exception it raised (when it raised in time).
    """

    done: bool
    value: T | None = None
    error: BaseException | None = None


def call_within(func: Callable[[], T], seconds: float, name: str = "qubinode-bounded") -> Bounded[T]:
    """Run ``func`` in a daemon thread and wait at most ``seconds`` for it.

    The thread is not killed when the time is up (Python cannot); it runs on in the background and its
    result is dropped, so ``func`` must be safe to finish late (idempotent writes).

    :param func: the work.
    :param seconds: the most time to wait.
    :param name: the thread's name (shows in thread dumps).
    """
    box: Bounded[T] = Bounded(done=False)
    finished = threading.Event()

    def run() -> None:
        try:
            box.value = func()
        except BaseException as exc:  # handed to the caller, never lost in the thread
            box.error = exc
        finally:
            finished.set()

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    box.done = finished.wait(max(0.0, seconds))
    if not box.done:
        return Bounded(done=False)
    return box


__all__ = ["MIN_STEP_SECONDS", "Bounded", "Deadline", "call_within"]
