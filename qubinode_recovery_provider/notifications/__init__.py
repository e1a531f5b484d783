"""Airflow notifiers: ``on_failure_callback=RecoveryNotifier()`` (and ``on_retry_callback``).

Importing this package is cheap; the diagnosis, the ledger and the HTTP client load on the first failure.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qubinode_recovery_provider.lazy import from_module, lazy_attributes
from qubinode_recovery_provider.notifications.recovery import RecoveryNotifier

if TYPE_CHECKING:
    from qubinode_recovery_provider.notifications.failure_path import (
        NotificationOutcome,
        deliver_pending_triggers,
    )

__all__ = ["NotificationOutcome", "RecoveryNotifier", "deliver_pending_triggers"]


__getattr__ = lazy_attributes(
    __name__,
    from_module(
        "qubinode_recovery_provider.notifications.failure_path",
        ("NotificationOutcome", "deliver_pending_triggers"),
    ),
    globals(),
)
