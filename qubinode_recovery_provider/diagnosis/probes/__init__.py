"""The context probes, one module per kind: the bounded runner (:mod:`.commands`), resources, systemd,
podman, TCP reachability (:mod:`.network`) and the service dependency map. Every probe is bounded by a
short timeout and reports :attr:`Health.UNKNOWN` (with the reason) when its tool is absent, unreachable
or too slow; none raises. :mod:`qubinode_recovery_provider.diagnosis.context` combines them.
"""

from __future__ import annotations

from qubinode_recovery_provider.diagnosis.probes.network import check_reachability
from qubinode_recovery_provider.diagnosis.probes.podman import collect_podman
from qubinode_recovery_provider.diagnosis.probes.resources import collect_resources
from qubinode_recovery_provider.diagnosis.probes.systemd import collect_systemd

__all__ = ["check_reachability", "collect_podman", "collect_resources", "collect_systemd"]
