"""The libvirt hook, the inventory it lists and the domain sensor, against the real libvirt library:
its test driver with a node XML (running, shut-off and missing domains), a refused port and a host
that accepts the connection but never answers."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from qubinode_recovery_provider.hooks.libvirt import LibvirtHook, LibvirtTimeoutError
from qubinode_recovery_provider.sensors.libvirt import LibvirtDomainSensor
from qubinode_recovery_provider.shadow import InventoryTarget, parse_target, read_inventories, read_inventory

LAB_XML = Path(__file__).resolve().parents[2] / "dags" / "examples" / "lab_node.xml"
LAB_URI = f"test://{LAB_XML}"

pytestmark = pytest.mark.integration


@pytest.fixture
def silent_host() -> Iterator[str]:
    """A TCP port that accepts connections and never says a word (a hung libvirtd, a dead ssh)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"qemu+tcp://127.0.0.1:{server.getsockname()[1]}/system"


def _refused_uri() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"qemu+tcp://127.0.0.1:{port}/system"


@pytest.fixture
def lab_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    conn = {"conn_type": "libvirt", "extra": {"uri": LAB_URI, "host_name": "lab", "timeout": 5}}
    monkeypatch.setenv("AIRFLOW_CONN_LIBVIRT_LAB", json.dumps(conn))
    return "libvirt_lab"


def test_the_test_driver_lists_running_shut_off_and_no_missing_domains() -> None:
    inventory = read_inventory(InventoryTarget(LAB_URI, host="lab"))
    assert inventory.reachable
    assert {n: d.state for n, d in inventory.domains.items()} == {
        "web1": "running",
        "cache1": "shutoff",
        "bastion": "running",
    }
    assert "db1" not in inventory.domains
    assert inventory.domains["cache1"].reason is not None
    assert not inventory.domains["cache1"].satisfies("running")
    assert inventory.domains["cache1"].satisfies("defined")


def test_a_refused_connection_is_an_unreachable_host() -> None:
    inventory = read_inventory(InventoryTarget(_refused_uri(), host="kvm9", timeout=10))
    assert not inventory.reachable
    assert "Connection refused" in (inventory.error or "")


def test_a_host_that_never_answers_is_abandoned_after_its_timeout(silent_host: str) -> None:
    lab, silent = read_inventories(
        [InventoryTarget(LAB_URI, host="lab"), InventoryTarget(silent_host, host="kvm7", timeout=1.5)]
    )
    assert lab.reachable
    assert not silent.reachable
    assert "no answer within 1.5 s" in (silent.error or "")


def test_targets_from_the_command_line() -> None:
    named = parse_target(f"lab={LAB_URI}")
    assert (named.uri, named.host_name) == (LAB_URI, "lab")
    remote = parse_target("qemu+ssh://root@KVM1.example.com/system?no_tty=1")
    assert remote.host_name == "kvm1.example.com"
    local = InventoryTarget("qemu:///system", conn_id="libvirt_default")
    assert (local.host_name, local.aliases()) == ("localhost", ("libvirt_default",))
    aliased = InventoryTarget("qemu+ssh://root@kvm1.lan/system", host="kvm1", conn_id="libvirt_kvm1")
    assert aliased.aliases() == ("kvm1.lan", "libvirt_kvm1")


def test_the_hook_reads_its_connection_and_lists_domains(lab_connection: str) -> None:
    hook = LibvirtHook(libvirt_conn_id=lab_connection)
    assert hook.get_uri() == LAB_URI
    assert hook.get_timeout() == 5
    ok, message = hook.test_connection()
    assert ok
    assert "3 domains, 2 running" in message
    assert hook.get_domain("web1") is not None
    assert hook.get_domain("db1") is None
    inventory = hook.list_domains()
    assert (inventory.host, inventory.conn_id, inventory.aliases) == ("lab", "libvirt_lab", ("libvirt_lab",))


def test_the_hook_gives_a_read_write_connection(lab_connection: str) -> None:
    conn = LibvirtHook(libvirt_conn_id=lab_connection).get_conn()
    try:
        assert conn.lookupByName("web1").isActive()
    finally:
        conn.close()


def test_the_prefixed_extra_of_older_forms_is_understood(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    conn = {"conn_type": "libvirt", "extra": {"extra__libvirt__uri": LAB_URI}}
    monkeypatch.setenv("AIRFLOW_CONN_LIBVIRT_OLD", json.dumps(conn))
    assert LibvirtHook("libvirt_old").get_uri() == LAB_URI


def test_the_default_connection_falls_back_to_the_test_driver(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.delenv("AIRFLOW_CONN_LIBVIRT_DEFAULT", raising=False)
    hook = LibvirtHook()
    assert hook.get_uri() == "test:///default"
    assert hook.test_connection()[0]


def test_test_connection_reports_an_unreachable_host(silent_host: str) -> None:
    ok, message = LibvirtHook(uri=silent_host, timeout=1).test_connection()
    assert not ok
    assert "no answer within 1 s" in message


def test_get_conn_gives_up_on_a_silent_host(silent_host: str) -> None:
    with pytest.raises(LibvirtTimeoutError, match="did not answer within 1 s"):
        LibvirtHook(uri=silent_host, timeout=1).get_conn()


@pytest.mark.parametrize(
    ("domain", "expected_state", "done"),
    [
        ("web1", "running", True),
        ("cache1", "running", False),
        ("cache1", "defined", True),
        ("db1", "defined", False),
    ],
)
def test_the_sensor_waits_for_the_domain_state(
    lab_connection: str, domain: str, expected_state: str, done: bool
) -> None:
    sensor = LibvirtDomainSensor(
        task_id="wait", domain=domain, expected_state=expected_state, libvirt_conn_id=lab_connection
    )
    assert sensor.poke({}) is done  # type: ignore[arg-type]


def test_the_sensor_keeps_waiting_on_an_unreachable_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    conn = {"conn_type": "libvirt", "extra": {"uri": _refused_uri(), "timeout": 5}}
    monkeypatch.setenv("AIRFLOW_CONN_LIBVIRT_DOWN", json.dumps(conn))
    sensor = LibvirtDomainSensor(task_id="wait", domain="web1", libvirt_conn_id="libvirt_down")
    assert sensor.poke({}) is False  # type: ignore[arg-type]
