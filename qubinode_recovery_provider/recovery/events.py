"""Events of the recovery pipeline, delivered to subscribers in the emitting process.

Three events exist: :data:`FAILURE_DIAGNOSED` (data: ``diagnosis``), :data:`RECOVERY_PLAN_CREATED`
(``plan``) and :data:`RECOVERY_EXECUTED` (``plan``, ``option``, ``attempt``). A subscriber that raises is
logged and skipped: a broken subscriber never changes what the pipeline does.

The reference guide's names work too: ``plugin_failure_diagnosed`` is :data:`FAILURE_DIAGNOSED` (the
other two names are the same), and an event reads like the guide's payload dict: ``event["plugin_name"]``,
``event["action_type"]`` and the other :data:`GUIDE_KEYS` are derived from the event's models (see
:func:`guide_payload`), so ``lambda data: print(data["action_type"], data["plugin_name"])`` works beside
subscribers that read ``event.data["attempt"]``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

FAILURE_DIAGNOSED = "failure_diagnosed"
RECOVERY_PLAN_CREATED = "recovery_plan_created"
RECOVERY_EXECUTED = "recovery_executed"
EVENT_NAMES = frozenset({FAILURE_DIAGNOSED, RECOVERY_PLAN_CREATED, RECOVERY_EXECUTED})
ALL_EVENTS = "*"
#: The reference guide's event names that differ from ours.
GUIDE_EVENT_NAMES = {"plugin_failure_diagnosed": FAILURE_DIAGNOSED}
#: The reference guide's payload keys an event answers (None when the event does not know).
GUIDE_KEYS = (
    "plugin_name",
    "task_id",
    "run_id",
    "fingerprint",
    "root_cause",
    "confidence",
    "action_type",
    "action",
    "outcome",
    "success",
    "dry_run",
)


def canonical_event_name(event: str) -> str:
    """Our name of ``event`` (a guide name, one of :data:`EVENT_NAMES`, or ``"*"``).

    :raises ValueError: for any other name
    """
    name = GUIDE_EVENT_NAMES.get(event, event)
    if name != ALL_EVENTS and name not in EVENT_NAMES:
        known = sorted(EVENT_NAMES | set(GUIDE_EVENT_NAMES))
        raise ValueError(f"unknown event {event!r}; expected one of {known} or '*'")
    return name


@dataclass(frozen=True)
class RecoveryEvent(Mapping[str, Any]):
    """One emitted event; also a read-only mapping of its payload (``data`` first, then the guide's
    derived keys, :data:`GUIDE_KEYS`).

    :param name: one of :data:`EVENT_NAMES`
    :param data: the models the event is about, by name (``diagnosis``, ``plan``, ``option``, ``attempt``)
    """

    name: str
    data: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The guide's payload dict: :func:`guide_payload` with ``data`` over it."""
        return {**guide_payload(self.data), **self.data}

    def __getitem__(self, key: str) -> Any:
        if key in self.data:
            return self.data[key]
        if key in GUIDE_KEYS:
            return guide_payload(self.data)[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.payload())

    def __len__(self) -> int:
        return len(self.payload())


def guide_payload(data: Mapping[str, Any]) -> dict[str, Any]:
    """The guide's payload keys derived from an event's models: ``plugin_name`` is the failed DAG's id
    (or the CI job's name), ``action_type`` the option's kind (``retry``, ``manual_fix``, ...: the
    executed option, else the plan's recommended one), ``success`` whether the attempt succeeded.

    :param data: the event's ``diagnosis``, ``plan``, ``option``, ``attempt``
    """
    source = data.get("plan") or data.get("diagnosis")
    option = data.get("option") or getattr(data.get("plan"), "recommended", None)
    attempt = data.get("attempt")
    outcome = getattr(attempt, "outcome", None)
    cause = getattr(source, "root_cause", None)
    confidence = getattr(data.get("diagnosis"), "confidence", None)
    return {
        "plugin_name": getattr(source, "dag_id", None),
        "task_id": getattr(source, "task_id", None),
        "run_id": getattr(source, "run_id", None),
        "fingerprint": getattr(source, "fingerprint", None),
        "root_cause": getattr(cause, "value", cause),
        "confidence": getattr(option, "confidence", confidence),
        "action_type": getattr(getattr(option, "type", None), "value", None),
        "action": getattr(option, "action", None),
        "outcome": getattr(outcome, "value", outcome),
        "success": None if outcome is None else outcome.value == "succeeded",
        "dry_run": getattr(attempt, "dry_run", None),
    }


Subscriber = Callable[[RecoveryEvent], None]


class EventBus:
    """Synchronous publish/subscribe for :class:`RecoveryEvent`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[tuple[str, Subscriber]] = []

    def subscribe(self, event: str, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback`` for every ``event`` (``"*"``: every event); return an unsubscribe function.

        :param event: an event name (ours or the guide's, :data:`GUIDE_EVENT_NAMES`) or ``"*"``
        :param callback: receives the :class:`RecoveryEvent`
        """
        entry = (canonical_event_name(event), callback)
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
