"""What is really on each libvirt host: one bulk listing per host per scan, with a hard timeout.

Each host is listed with a single ``getAllDomainStats(VIR_DOMAIN_STATS_STATE)`` call (the bulk form of
``listAllDomains`` that also returns every domain's state and reason in the same round trip), falling
back to one ``listAllDomains`` plus ``state()`` per domain on drivers without bulk stats. The number of
libvirt calls therefore does not depend on the number of runs scanned.

A dead ``qemu+ssh://`` host can block a libvirt call for minutes (libvirt's keepalive notices late, and
not during ``open``), so every listing runs in a daemon thread and is abandoned after ``timeout``
seconds: the host is then reported unreachable, and the scan goes on. ``libvirt`` is imported only
when a host is listed.
"""

from __future__ import annotations

import os
import threading
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from qubinode_recovery_provider.shadow.records import DomainInfo, HostInventory

DEFAULT_TIMEOUT = 20.0

STATE_NAMES = {
    0: "nostate",
    1: "running",
    2: "blocked",
    3: "paused",
    4: "shutdown",
    5: "shutoff",
    6: "crashed",
    7: "pmsuspended",
}
_REASONS = {
    "running": [
        "unknown", "booted", "migrated", "restored", "from_snapshot", "unpaused",
        "migration_canceled", "save_canceled", "wakeup", "crashed", "postcopy", "postcopy_failed",
    ],
    "paused": [
        "unknown", "user", "migration", "save", "dump", "ioerror", "watchdog", "from_snapshot",
        "shutting_down", "snapshot", "crashed", "starting_up", "postcopy", "postcopy_failed", "api_error",
    ],
    "shutoff": [
        "unknown", "shutdown", "destroyed", "crashed", "migrated", "saved", "failed", "from_snapshot",
        "daemon",
    ],
    "shutdown": ["unknown", "user"],
    "crashed": ["unknown", "panicked"],
    "pmsuspended": ["unknown"],
    "blocked": ["unknown"],
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class InventoryTarget:
    """One libvirt host to list.

    :param uri: the libvirt URI (``qemu:///system``, ``qemu+ssh://root@kvm1/system``, ``test:///default``)
    :param host: the inventory host name declarations use; default: the URI's host, else ``localhost``
    :param conn_id: the Airflow connection the target came from (an alias of the host)
    :param timeout: seconds after which the host counts as unreachable
    """

    uri: str
    host: str | None = None
    conn_id: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    @property
    def host_name(self) -> str:
        return (self.host or uri_host(self.uri)).lower()

    def aliases(self) -> tuple[str, ...]:
        """Other names of the host: the URI's host (remote URIs only) and the connection id."""
        names = [uri_host(self.uri)] if "://" in self.uri and uri_host(self.uri) != "localhost" else []
        if self.conn_id:
            names.append(self.conn_id)
        return tuple(dict.fromkeys(n.lower() for n in names if n and n.lower() != self.host_name))


def uri_host(uri: str) -> str:
    """The host name in a libvirt URI; ``localhost`` for local drivers (``qemu:///system``, ``test:///``)."""
    try:
        host = urllib.parse.urlsplit(uri).hostname
    except ValueError:
        host = None
    return (host or "localhost").lower()


def redact_uri(uri: str) -> str:
    """The URI without a password in its user info (libvirt URIs rarely carry one, but may)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def parse_target(spec: str, timeout: float = DEFAULT_TIMEOUT) -> InventoryTarget:
    """``[HOST=]URI`` as given on the command line."""
    name, sep, uri = spec.partition("=")
    if sep and "://" not in name and "://" in uri:
        return InventoryTarget(uri=uri.strip(), host=name.strip() or None, timeout=timeout)
    return InventoryTarget(uri=spec.strip(), timeout=timeout)


# --- listing ------------------------------------------------------------------------------------


def _quiet_libvirt_errors(libvirt: Any) -> None:
    """Stop libvirt from printing every error to stderr (the scan reports them itself)."""
    if not getattr(_quiet_libvirt_errors, "done", False):
        libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
        _quiet_libvirt_errors.done = True  # type: ignore[attr-defined]


def reason_name(state: str, reason: int | None) -> str | None:
    if reason is None:
        return None
    names = _REASONS.get(state, [])
    return names[reason] if 0 <= reason < len(names) else str(reason)


def _uptime(uri: str, name: str) -> float | None:
    """Seconds since a local QEMU domain started (its pid file's age); None where unknowable."""
    parts = urllib.parse.urlsplit(uri)
    if parts.hostname or not parts.scheme.startswith("qemu"):
        return None
    runtime = Path(os.environ.get("XDG_RUNTIME_DIR", "/run/user/0"))
    candidates = [Path("/run/libvirt/qemu") / f"{name}.pid", runtime / "libvirt/qemu/run" / f"{name}.pid"]
    for pidfile in candidates:
        try:
            return max(0.0, time.time() - pidfile.stat().st_mtime)
        except OSError:
            continue
    return None


def _states(conn: Any, libvirt: Any) -> list[tuple[str, int, int | None]]:
    """``(name, state, reason)`` of every domain, in one round trip when the driver allows."""
    try:
        stats = conn.getAllDomainStats(libvirt.VIR_DOMAIN_STATS_STATE, 0)
        return [(dom.name(), int(s.get("state.state", 0)), s.get("state.reason")) for dom, s in stats]
    except libvirt.libvirtError as exc:
        if exc.get_error_code() not in (libvirt.VIR_ERR_NO_SUPPORT, libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED):
            raise
    result = []
    for dom in conn.listAllDomains(0):
        state, reason = dom.state()
        result.append((dom.name(), int(state), reason))
    return result


def list_domains(uri: str) -> dict[str, DomainInfo]:
    """Every domain of the host at ``uri`` (read-only connection). Raises ``libvirt.libvirtError``."""
    import libvirt

    _quiet_libvirt_errors(libvirt)
    conn = libvirt.openReadOnly(uri)
    try:
        domains = {}
        for name, state_code, reason in _states(conn, libvirt):
            state = STATE_NAMES.get(state_code, str(state_code))
            uptime = _uptime(uri, name) if state == "running" else None
            domains[name] = DomainInfo(name, state, reason_name(state, reason), uptime)
        return domains
    finally:
        conn.close()


class _Listing(threading.Thread):
    """One host's listing in a daemon thread, so that a hung libvirt call cannot hold up the scan."""

    def __init__(self, target: InventoryTarget) -> None:
        super().__init__(name=f"libvirt-inventory-{target.host_name}", daemon=True)
        self.target = target
        self.domains: dict[str, DomainInfo] | None = None
        self.error: str | None = None
        self.started_at = 0.0
        self.finished_at: float | None = None

    def run(self) -> None:
        try:
            self.domains = list_domains(self.target.uri)
        except Exception as exc:  # libvirtError, ImportError, anything: the host is unreachable
            self.error = _one_line(exc)
        finally:
            self.finished_at = time.monotonic()

    def start(self) -> None:
        self.started_at = time.monotonic()
        super().start()

    def inventory(self) -> HostInventory:
        target = self.target
        base: dict[str, Any] = {
            "host": target.host_name,
            "uri": redact_uri(target.uri),
            "aliases": target.aliases(),
            "conn_id": target.conn_id,
            "listed_at": datetime.now(UTC).isoformat(),
        }
        if self.finished_at is None:
            return HostInventory(
                reachable=False,
                error=f"no answer within {target.timeout:g} s (listing abandoned)",
                elapsed_seconds=time.monotonic() - self.started_at,
                **base,
            )
        elapsed = self.finished_at - self.started_at
        if self.domains is None:
            return HostInventory(reachable=False, error=self.error, elapsed_seconds=elapsed, **base)
        return HostInventory(reachable=True, domains=self.domains, elapsed_seconds=elapsed, **base)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


class InventoryListing:
    """Listings of several hosts running side by side: :meth:`start` them, do other work, then
    :meth:`collect` (which waits at most each host's remaining timeout)."""

    def __init__(self, targets: Sequence[InventoryTarget]) -> None:
        self._listings = [_Listing(t) for t in targets]
        self._started = False

    def start(self) -> InventoryListing:
        if not self._started:
            self._started = True
            for listing in self._listings:
                listing.start()
        return self

    def collect(self) -> list[HostInventory]:
        self.start()
        for listing in self._listings:
            remaining = listing.target.timeout - (time.monotonic() - listing.started_at)
            listing.join(max(0.0, remaining))
        return [listing.inventory() for listing in self._listings]


def read_inventories(targets: Sequence[InventoryTarget]) -> list[HostInventory]:
    """List every target concurrently; each gets its own timeout, the whole call at most the longest."""
    return InventoryListing(targets).start().collect()


def read_inventory(target: InventoryTarget) -> HostInventory:
    """List one host (see :func:`read_inventories`)."""
    return read_inventories([target])[0]
