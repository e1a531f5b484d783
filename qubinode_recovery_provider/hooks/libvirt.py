"""Hook for the ``libvirt`` connection type: a libvirt URI per connection.

Connection fields (declarative ``conn-fields``, stored in the connection's extra):

- ``uri``: the libvirt URI, default ``test:///default`` (the test driver's one running domain). In
  production ``qemu:///system`` or ``qemu+ssh://root@kvm1/system?no_tty=1&keyfile=...``.
- ``host_name``: the name DAGs use in ``libvirt_domain(name, host=...)``; default the URI's host
  (``localhost`` for local URIs).
- ``timeout``: seconds after which an unanswered host counts as unreachable (default 20).

For example ``AIRFLOW_CONN_LIBVIRT_KVM1='{"conn_type": "libvirt", "extra": {"uri":
"qemu+ssh://root@kvm1/system?no_tty=1", "host_name": "kvm1"}}'``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook

from qubinode_recovery_provider.hooks._connection import connection_extra
from qubinode_recovery_provider.shadow.inventory import (
    DEFAULT_TIMEOUT,
    InventoryTarget,
    read_inventory,
    redact_uri,
)

if TYPE_CHECKING:
    from qubinode_recovery_provider.shadow.records import DomainInfo, HostInventory

DEFAULT_URI = "test:///default"


class LibvirtTimeoutError(TimeoutError):
    """The libvirt host did not answer within the connection's timeout."""


class LibvirtHook(BaseHook):
    """Talk to one libvirt host.

    :param libvirt_conn_id: the ``libvirt`` connection (``libvirt_default`` falls back to
        ``test:///default`` when no such connection exists)
    :param uri: use this libvirt URI instead of the connection's
    :param timeout: override the connection's timeout (seconds)
    """

    conn_name_attr = "libvirt_conn_id"
    default_conn_name = "libvirt_default"
    conn_type = "libvirt"
    hook_name = "Libvirt"

    def __init__(
        self,
        libvirt_conn_id: str = default_conn_name,
        uri: str | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.libvirt_conn_id = libvirt_conn_id
        self._uri = uri
        self._timeout = timeout
        self._extra: dict[str, Any] | None = None

    # --- settings --------------------------------------------------------------------------------

    def _connection_extra(self) -> dict[str, Any]:
        if self._extra is None:
            if self._uri is not None:
                self._extra = {}
            else:
                self._extra = self._read_extra()
        return self._extra

    def _read_extra(self) -> dict[str, Any]:
        try:
            conn = self.get_connection(self.libvirt_conn_id)
        except Exception:
            if self.libvirt_conn_id == self.default_conn_name:
                return {}
            raise
        extra = connection_extra(conn, self.conn_type)
        if not extra.get("uri") and conn.host and "://" in conn.host:
            extra["uri"] = conn.host
        return extra

    def get_uri(self) -> str:
        """The libvirt URI of this connection."""
        return self._uri or str(self._connection_extra().get("uri") or DEFAULT_URI)

    def get_timeout(self) -> float:
        value = self._timeout if self._timeout is not None else self._connection_extra().get("timeout")
        try:
            return float(value) if value not in (None, "") else DEFAULT_TIMEOUT
        except (TypeError, ValueError):
            return DEFAULT_TIMEOUT

    def inventory_target(self) -> InventoryTarget:
        """What the shadow scan lists for this connection."""
        host = self._connection_extra().get("host_name") or None
        return InventoryTarget(
            uri=self.get_uri(), host=host, conn_id=self.libvirt_conn_id, timeout=self.get_timeout()
        )

    # --- libvirt ---------------------------------------------------------------------------------

    def get_conn(self) -> Any:
        """A read-write ``libvirt.virConnect``; raises :class:`LibvirtTimeoutError` when the host does
        not answer within the timeout. Close it when done."""
        import libvirt

        result: dict[str, Any] = {}
        lock = threading.Lock()

        def connect() -> None:
            try:
                conn = libvirt.open(self.get_uri())
            except Exception as exc:
                result["error"] = exc
                return
            with lock:
                if result.get("abandoned"):
                    conn.close()  # the caller gave up long ago: do not leak the connection
                else:
                    result["conn"] = conn

        worker = threading.Thread(target=connect, name="libvirt-open", daemon=True)
        worker.start()
        worker.join(self.get_timeout())
        with lock:
            if "conn" not in result and "error" not in result:
                result["abandoned"] = True
        if result.get("abandoned"):
            raise LibvirtTimeoutError(
                f"libvirt host {redact_uri(self.get_uri())} did not answer within {self.get_timeout():g} s"
            )
        if "error" in result:
            raise result["error"]
        return result["conn"]

    def list_domains(self) -> HostInventory:
        """Every domain with its state and reason, in one call, never raising: an unreachable host is
        reported in the inventory (``reachable`` False, ``error``)."""
        return read_inventory(self.inventory_target())

    def get_domain(self, name: str) -> DomainInfo | None:
        """The domain called ``name``; None when absent. Raises when the host cannot be listed."""
        inventory = self.list_domains()
        if not inventory.reachable:
            raise ConnectionError(f"libvirt host {inventory.uri} unreachable: {inventory.error}")
        return inventory.domains.get(name)

    def test_connection(self) -> tuple[bool, str]:
        """List the host's domains (the UI's Test button)."""
        inventory = self.list_domains()
        if not inventory.reachable:
            return False, f"{inventory.uri}: {inventory.error}"
        running = sum(1 for d in inventory.domains.values() if d.state == "running")
        return True, (
            f"Connected to {inventory.uri} (host {inventory.host}): {len(inventory.domains)} domains, "
            f"{running} running"
        )
