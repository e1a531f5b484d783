"""Tests of the reachability probes (qubinode_recovery_provider.diagnosis.probes.network).

They only ever talk to loopback sockets.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from qubinode_recovery_provider.diagnosis.probes.network import check_reachability, parse_target
from qubinode_recovery_provider.models import Health


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A loopback port whose accept queue is full, so further connects hang until they time out.

    Linux drops a SYN when the listener's accept queue is full; with ``listen(0)`` one unaccepted
    connection fills it.
    """
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    held: list[socket.socket] = []
    try:
        for _ in range(16):
            try:
                held.append(socket.create_connection(("127.0.0.1", port), timeout=0.2))
            except TimeoutError:
                break
        else:
            pytest.fail("the kernel accepted every connection: cannot build a hanging loopback port")
        yield port
    finally:
        for conn in held:
            conn.close()
        server.close()


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("quay.io:443", ("quay.io", 443)),
        ("10.0.0.5:22", ("10.0.0.5", 22)),
        ("[::1]:8080", ("::1", 8080)),
        (" vault.example.com:8200 ", ("vault.example.com", 8200)),
    ],
)
def test_parse_target(target: str, expected: tuple[str, int]) -> None:
    assert parse_target(target) == expected


@pytest.mark.parametrize(
    "target", ["no-port", "host:", ":80", "host:http", "host:0", "host:70000", "::1:80", "[::1]80"]
)
def test_parse_target_rejects_malformed(target: str) -> None:
    with pytest.raises(ValueError, match="malformed target"):
        parse_target(target)


def test_reachable_loopback_listener(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    (result,) = check_reachability([f"127.0.0.1:{port}"], timeout=2)
    assert result.state == Health.HEALTHY
    assert result.host == "127.0.0.1"
    assert result.port == port
    assert result.latency_ms is not None
    assert 0.0 <= result.latency_ms < 2000
    assert result.error == ""


def test_ipv6_loopback_listener() -> None:
    server = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    server.bind(("::1", 0))
    server.listen(4)
    try:
        port = server.getsockname()[1]
        (result,) = check_reachability([f"[::1]:{port}"], timeout=2)
    finally:
        server.close()
    assert result.state == Health.HEALTHY
    assert result.host == "::1"


def test_closed_port_is_down_with_refusal(closed_port: int) -> None:
    (result,) = check_reachability([f"127.0.0.1:{closed_port}"], timeout=2)
    assert result.state == Health.DOWN
    assert "refused" in result.error.lower()
    assert result.latency_ms is None


def test_malformed_target_is_unknown_not_raised() -> None:
    results = check_reachability(["quay.io", "[::1]:99999"], timeout=1)
    assert [r.state for r in results] == [Health.UNKNOWN, Health.UNKNOWN]
    assert all("malformed target" in r.error for r in results)
    assert results[0].target == "quay.io"


def test_connect_timeout_is_down(blackhole: int) -> None:
    started = time.monotonic()
    (result,) = check_reachability([f"127.0.0.1:{blackhole}"], timeout=0.3)
    # Without the timeout, a connect to a full accept queue hangs for about two minutes.
    assert time.monotonic() - started < 30
    assert result.state == Health.DOWN
    assert "timed out" in result.error


def test_targets_are_probed_concurrently(blackhole: int, listener: socket.socket, closed_port: int) -> None:
    good = f"127.0.0.1:{listener.getsockname()[1]}"
    targets = [f"127.0.0.1:{blackhole}"] * 5 + [good, f"127.0.0.1:{closed_port}", "bad"]
    started = time.monotonic()
    results = check_reachability(targets, timeout=3)
    elapsed = time.monotonic() - started
    # In sequence the five 3 s timeouts take 15 s; in parallel about 3 s.
    assert elapsed < 12, f"{elapsed:.2f}s: the 3 s timeouts were not run in parallel"
    assert [r.target for r in results] == targets
    assert [r.state for r in results] == [Health.DOWN] * 5 + [Health.HEALTHY, Health.DOWN, Health.UNKNOWN]
