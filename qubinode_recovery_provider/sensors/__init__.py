"""Sensors. Importing this package is cheap: each sensor's module loads on first use.

- :class:`~qubinode_recovery_provider.sensors.recovery.RecoveredRunSensor`: a recovered run reached a
  final state (reschedule mode or deferrable).
- :class:`~qubinode_recovery_provider.sensors.libvirt.LibvirtDomainSensor`: a libvirt domain exists or
  runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qubinode_recovery_provider.lazy import from_module, lazy_attributes

if TYPE_CHECKING:
    from qubinode_recovery_provider.sensors.libvirt import LibvirtDomainSensor
    from qubinode_recovery_provider.sensors.recovery import RecoveredRunSensor

__all__ = ["LibvirtDomainSensor", "RecoveredRunSensor"]

__getattr__ = lazy_attributes(
    __name__,
    {
        **from_module("qubinode_recovery_provider.sensors.recovery", ("RecoveredRunSensor",)),
        **from_module("qubinode_recovery_provider.sensors.libvirt", ("LibvirtDomainSensor",)),
    },
    globals(),
)
