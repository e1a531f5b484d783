"""Events of the recovery pipeline, delivered to subscribers in the emitting process.

Three events exist: :data:`FAILURE_DIAGNOSED` (data: ``diagnosis``), :data:`RECOVERY_PLAN_CREATED`
(``plan``) and :data:`RECOVERY_EXECUTED` (``plan``, ``option``, ``attempt``). A subscriber that raises is
logged and skipped: a broken subscriber never changes what the pipeline does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

FAILURE_DIAGNOSED = "failure_diagnosed"
RECOVERY_PLAN_CREATED = "recovery_plan_created"
RECOVERY_EXECUTED = "recovery_executed"
EVENT_NAMES = frozenset({FAILURE_DIAGNOSED, RECOVERY_PLAN_CREATED, RECOVERY_EXECUTED})
ALL_EVENTS = "*"


@dataclass(frozen=True)
class RecoveryEvent:
    """One emitted event.

    :param name: one of :data:`EVENT_NAMES`
    :param data: the models the event is about, by name (``diagnosis``, ``plan``, ``option``, ``attempt``)
    """

    name: str
    data: dict[str, Any] = field(default_factory=dict)


Subscriber = Callable[[RecoveryEvent], None]


class EventBus:
    """Synchronous publish/subscribe for :class:`RecoveryEvent`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[tuple[str, Subscriber]] = []

    def subscribe(self, event: str, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` for every ``event`` (``"*"``: every event); return an unsubscribe function.

        :param event: an event name or ``"*"``
        :param callback: receives the :class:`RecoveryEvent`
        """
        if event != ALL_EVENTS and event not in EVENT_NAMES:
            raise ValueError(f"unknown event {event!r}; expected one of {sorted(EVENT_NAMES)} or '*'")
        entry = (event, callback)
        with self._lock:
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)

        return unsubscribe

    def emit(self, name: str, **data: Any) -> RecoveryEvent:
        """Deliver an event to its subscribers; subscriber errors are logged, never raised.

        :param name: one of :data:`EVENT_NAMES`
        """
        event = RecoveryEvent(name=name, data=data)
        with self._lock:
            targets = [cb for wanted, cb in self._subscribers if wanted in (name, ALL_EVENTS)]
        for callback in targets:
            try:
                callback(event)
            except Exception:
                log.exception("recovery event subscriber %r failed on %s", callback, name)
        return event

    def clear(self) -> None:
        """Remove every subscriber."""
        with self._lock:
            self._subscribers.clear()


_default_bus = EventBus()


def default_bus() -> EventBus:
    """The process-wide bus used by the public API and by default by planner and executor."""
    return _default_bus
