"""Reachability probes: TCP connects to ``host:port`` / ``[ipv6]:port`` targets, concurrently and
bounded, with their latency."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from qubinode_recovery_provider.categories import Health
from qubinode_recovery_provider.diagnosis.probes.commands import (
    DEFAULT_TIMEOUT,
    error_text,
    run_bounded,
    sane_timeout,
)

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import Reachability


def parse_target(target: str) -> tuple[str, int]:
    """Split ``host:port`` or ``[ipv6]:port`` into host and port.

    :param target: the configured target.
    :raises ValueError: when the target is malformed.
    """
    text = target.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"malformed target {target!r}: expected [ipv6]:port")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f"malformed target {target!r}: expected host:port")
        if ":" in host:
            raise ValueError(f"malformed target {target!r}: put IPv6 addresses in brackets, [addr]:port")
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"malformed target {target!r}: empty or invalid host")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"malformed target {target!r}: port must be 1-65535")
    return host, int(port_text)


def probe_target(target: str, timeout: float | None = DEFAULT_TIMEOUT) -> Reachability:
    """Open (and close) one TCP connection to ``target``; never raises.

    :param target: ``host:port`` or ``[ipv6]:port``.
    :param timeout: connect timeout in seconds.
    """
    from qubinode_recovery_provider.models import Reachability  # built after the probe

    try:
        host, port = parse_target(target)
    except ValueError as exc:
        return Reachability(target=target, host="", port=0, state=Health.UNKNOWN, error=str(exc))
    seconds = sane_timeout(timeout)
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=seconds):
            elapsed = (time.perf_counter() - started) * 1000.0
    except TimeoutError:
        error = f"timed out after {seconds:g}s"
    except socket.gaierror as exc:
        error = f"name resolution failed: {exc.strerror or exc}"
    except OSError as exc:
        error = error_text(exc)
    else:
        return Reachability(
            target=target, host=host, port=port, state=Health.HEALTHY, latency_ms=round(elapsed, 3)
        )
    return Reachability(target=target, host=host, port=port, state=Health.DOWN, error=error)


def unfinished_target(target: str, status: str, timeout: float) -> Reachability:
    """Describe a target whose probe did not report back in time.

    :param target: the configured target.
    :param status: the :func:`run_bounded` status of its probe.
    :param timeout: the probe timeout.
    """
    from qubinode_recovery_provider.models import Reachability  # built after the probe

    try:
        host, port = parse_target(target)
    except ValueError as exc:
        return Reachability(target=target, host="", port=0, state=Health.UNKNOWN, error=str(exc))
    if status == "running":
        return Reachability(
            target=target,
            host=host,
            port=port,
            state=Health.DOWN,
            error=f"timed out after {timeout:g}s (name resolution or connect)",
        )
    error = status.removeprefix("error:") if status.startswith("error:") else "not probed before the deadline"
    return Reachability(target=target, host=host, port=port, state=Health.UNKNOWN, error=error)


def check_reachability(
    targets: Iterable[str] | str, timeout: float | None = DEFAULT_TIMEOUT
) -> list[Reachability]:
    """Probe TCP targets concurrently so the whole check takes about one ``timeout``; never raises.

    :param targets: ``host:port`` / ``[ipv6]:port`` strings.
    :param timeout: per-connection timeout in seconds.
    """
    items = targets.split(",") if isinstance(targets, str) else targets
    wanted = [t.strip() for t in items if t and t.strip()]
    seconds = sane_timeout(timeout)
    calls = [(lambda t=t: probe_target(t, seconds)) for t in wanted]
    outcomes = run_bounded(calls, seconds + 0.5)
    return [
        value if status == "done" and value is not None else unfinished_target(target, status, seconds)
        for target, (status, value) in zip(wanted, outcomes, strict=True)
    ]
