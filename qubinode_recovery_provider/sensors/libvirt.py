"""Wait until a libvirt domain is in the state a DAG needs (after ``kcli create vm``, for example)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator

from qubinode_recovery_provider.hooks.libvirt import LibvirtHook
from qubinode_recovery_provider.shadow.domains import check_state

if TYPE_CHECKING:
    from airflow.sdk import Context


class LibvirtDomainSensor(BaseSensorOperator):
    """Succeeds when the domain exists (``expected_state="defined"``) or runs (``"running"``).

    Each poke is one listing of the host, bounded by the connection's timeout; an unreachable host
    is logged and poked again (the sensor's own ``timeout`` ends the wait).

    :param domain: the libvirt domain name (templated)
    :param expected_state: ``running`` (default) or ``defined`` (templated)
    :param libvirt_conn_id: the ``libvirt`` connection of the host
    """

    template_fields: Sequence[str] = ("domain", "expected_state")
    ui_color = "#e8f4e8"

    def __init__(
        self,
        *,
        domain: str,
        expected_state: str = "running",
        libvirt_conn_id: str = LibvirtHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.domain = domain
        self.expected_state = expected_state
        self.libvirt_conn_id = libvirt_conn_id

    def poke(self, context: Context) -> bool:
        expected = check_state(self.expected_state)
        inventory = LibvirtHook(libvirt_conn_id=self.libvirt_conn_id).list_domains()
        if not inventory.reachable:
            self.log.warning("libvirt host %s unreachable: %s", inventory.uri, inventory.error)
            return False
        domain = inventory.domains.get(self.domain)
        if domain is None:
            self.log.info("Domain %s not on %s yet", self.domain, inventory.uri)
            return False
        self.log.info(
            "Domain %s on %s is %s (reason %s)", self.domain, inventory.uri, domain.state, domain.reason
        )
        return domain.satisfies(expected)
