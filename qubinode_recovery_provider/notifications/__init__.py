"""Airflow notifiers: ``on_failure_callback=RecoveryNotifier()`` (and ``on_retry_callback``).

Importing this package is cheap; the diagnosis, the ledger and the HTTP client load on the first failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.notifications.recovery import RecoveryNotifier

if TYPE_CHECKING:
    from qubinode_recovery_provider.notifications.failure_path import (
        NotificationOutcome,
        deliver_pending_triggers,
    )

__all__ = ["NotificationOutcome", "RecoveryNotifier", "deliver_pending_triggers"]


def __getattr__(name: str) -> Any:
    if name in ("NotificationOutcome", "deliver_pending_triggers"):
        from qubinode_recovery_provider.notifications import failure_path

        return getattr(failure_path, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
