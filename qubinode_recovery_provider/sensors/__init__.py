"""Sensors. Importing this package is cheap: each sensor's module loads on first use.

- :class:`~qubinode_recovery_provider.sensors.recovery.RecoveredRunSensor`: a recovered run reached a
  final state (reschedule mode or deferrable).
- :class:`~qubinode_recovery_provider.sensors.libvirt.LibvirtDomainSensor`: a libvirt domain exists or
  runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qubinode_recovery_provider.sensors.libvirt import LibvirtDomainSensor
    from qubinode_recovery_provider.sensors.recovery import RecoveredRunSensor

_MODULES = {
    "RecoveredRunSensor": "qubinode_recovery_provider.sensors.recovery",
    "LibvirtDomainSensor": "qubinode_recovery_provider.sensors.libvirt",
}

__all__ = ["LibvirtDomainSensor", "RecoveredRunSensor"]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return getattr(importlib.import_module(_MODULES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
