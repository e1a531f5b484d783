"""kcli as an inventory source: its client config gives the hosts, and its own view of a host (``kcli
list vm``, an external command with a timeout) is compared with libvirt's listing.

kcli itself cannot run here (no libvirtd): ``dags/examples/bin/kcli`` stands in for it, a real process
that lists a libvirt test-driver host through the real libvirt library and prints kcli's table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from shadow_site import EXISTING_LAB_XML, LAB_XML, REAL_EVENTS, REPO
from test_cli_scan import _no_configured_sources, _rest_json  # noqa: F401  (the autouse fixture)

from qubinode_recovery_provider.cli import main
from qubinode_recovery_provider.shadow import read_inventory
from qubinode_recovery_provider.shadow.inventory import InventoryTarget
from qubinode_recovery_provider.shadow.kcli import (
    KcliCheck,
    KcliConfigError,
    available_check,
    client_uri,
    kcli_targets,
    kcli_view,
    parse_vm_table,
    read_kcli_config,
)

STAND_IN = (sys.executable, str(REPO / "dags" / "examples" / "bin" / "kcli"))

KCLI_TABLE = """\
+--------+--------+-----------------+----------------------------------+------+---------+
|  Name  | Status |        Ip       |              Source              | Plan | Profile |
+--------+--------+-----------------+----------------------------------+------+---------+
| web1   |   up   | 192.168.122.41  | CentOS-Stream-GenericCloud-9.qcow2 | lab  |  kvirt  |
| cache1 |  down  |                 | CentOS-Stream-GenericCloud-9.qcow2 | lab  |  kvirt  |
+--------+--------+-----------------+----------------------------------+------+---------+
"""


@pytest.fixture
def kcli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The stand-in lists lab_node.xml and remembers no VM of its own."""
    monkeypatch.setenv("KCLI_LIBVIRT_URI", f"test://{LAB_XML}")
    monkeypatch.setenv("KCLI_STATE_DIR", str(tmp_path / "kcli-state"))


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(body)
    return path


def test_config_clients_and_their_uris(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        "default:\n  client: lab\n  user: admin\n"
        "lab:\n  host: 192.168.122.1\n  protocol: ssh\n"
        "local:\n  host: 127.0.0.1\n"
        "kvm2:\n  url: qemu+ssh://root@kvm2.lab/system?no_tty=1\n"
        "kvm3:\n  host: kvm3.lab\n  port: 2222\n  session: true\n"
        "aws1:\n  type: aws\n  access_key_id: x\n",
    )
    default, clients = read_kcli_config(path)
    assert default == "lab"
    assert [(c.name, c.uri) for c in clients] == [
        ("lab", "qemu+ssh://admin@192.168.122.1/system"),
        ("local", "qemu:///system"),
        ("kvm2", "qemu+ssh://root@kvm2.lab/system?no_tty=1"),
        ("kvm3", "qemu+ssh://admin@kvm3.lab:2222/session"),
    ]
    assert client_uri({"host": "h", "protocol": "tcp", "user": "u"}) == "qemu+tcp://u@h/system"
    assert [(t.host, t.uri) for t in kcli_targets(path)][:2] == [
        ("lab", "qemu+ssh://admin@192.168.122.1/system"),
        ("local", "qemu:///system"),
    ]


@pytest.mark.parametrize("body", ["- a list\n", "lab: [unclosed\n"])
def test_a_config_that_is_not_kcli_s_is_refused(tmp_path: Path, body: str) -> None:
    with pytest.raises(KcliConfigError):
        read_kcli_config(_config(tmp_path, body))
    with pytest.raises(KcliConfigError, match="cannot read"):
        read_kcli_config(tmp_path / "missing.yml")


def test_the_vm_table_of_kcli_and_of_plain_columns() -> None:
    assert parse_vm_table(KCLI_TABLE) == {"web1": "up", "cache1": "down"}
    assert parse_vm_table("Name  Status  Plan\nweb1  up  kvirt\n") == {"web1": "up"}
    assert parse_vm_table("Listing vms...\n") is None


def test_kcli_agreeing_with_libvirt_is_no_finding(kcli_env: None) -> None:
    inventory = read_inventory(InventoryTarget(f"test://{LAB_XML}", host="lab"))
    view = kcli_view("lab", STAND_IN, timeout=60)
    assert view.vms == {"web1": "up", "cache1": "down", "bastion": "up"}
    assert KcliCheck(["lab"], STAND_IN, timeout=60).run([inventory]) == []


def test_kcli_disagreeing_with_libvirt_is_a_finding(kcli_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KCLI_LIBVIRT_URI", f"test://{EXISTING_LAB_XML}")  # kcli sees another host
    inventory = read_inventory(InventoryTarget(f"test://{LAB_XML}", host="lab"))
    (finding,) = KcliCheck(["lab", "other"], STAND_IN, timeout=60).run([inventory])
    assert (finding.type.value, finding.resource, finding.severity.value) == (
        "kcli_check_failed",
        "libvirt://lab",
        "medium",
    )
    assert finding.evidence[0].startswith("kcli: `kcli -C lab list vm` lists 2 VMs; libvirt: test://")
    assert "logs1: kcli lists it (down), libvirt does not" in finding.evidence
    assert "cache1: libvirt lists it (shutoff), kcli does not" in finding.evidence


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (("/nonexistent/kcli",), "cannot run /nonexistent/kcli"),
        ((sys.executable, "-c", "import time; time.sleep(60)"), "no answer within 1 s"),
        (
            (sys.executable, "-c", "import sys; sys.exit('error: libvirt: connection refused')"),
            "exit 1: error",
        ),
    ],
)
def test_kcli_failing_is_a_finding(command: tuple[str, ...], error: str) -> None:
    inventory = read_inventory(InventoryTarget(f"test://{LAB_XML}", host="lab"))
    (finding,) = KcliCheck(["lab"], command, timeout=1).run([inventory])
    assert finding.type.value == "kcli_check_failed"
    assert error in finding.evidence[0]


def test_cli_hosts_from_kcli_config_and_the_kcli_check(
    kcli_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs_file = tmp_path / "runs.json"
    runs_file.write_text(json.dumps(_rest_json()))
    config = _config(tmp_path, f"lab:\n  url: test://{LAB_XML}\n")
    argv = ["scan", "--json", "--runs-file", str(runs_file), "--lineage-file", str(REAL_EVENTS)]
    argv += ["--kcli-config", str(config), "--kcli-check", "--kcli-command", STAND_IN[1]]
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{__import__('os').environ['PATH']}")
    code = main(argv)
    out, err = capsys.readouterr()
    findings = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert "libvirt hosts from kcli's config: lab" in err
    assert ("vm_not_created", "libvirt://lab/db1") in {(f["type"], f["resource"]) for f in findings}
    assert not [f for f in findings if f["type"] == "kcli_check_failed"]  # kcli agrees with libvirt

    monkeypatch.setenv("KCLI_LIBVIRT_URI", f"test://{EXISTING_LAB_XML}")
    main(argv)
    out, _ = capsys.readouterr()
    kinds = [json.loads(line)["type"] for line in out.splitlines()]
    assert kinds.count("kcli_check_failed") == 1


def test_cli_kcli_check_without_a_config_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["scan", "--runs-file", str(REAL_EVENTS), "--kcli-check", "--kcli-config", str(tmp_path / "no.yml")]
    )
    _, err = capsys.readouterr()
    assert code == 2
    assert err.count("\n") == 1
    assert "cannot read kcli config" in err


def test_the_check_is_available_only_where_kcli_is_set_up(tmp_path: Path) -> None:
    config = _config(tmp_path, f"default:\n  client: lab\nlab:\n  url: test://{LAB_XML}\n")
    check, why = available_check(tmp_path / "missing.yml", STAND_IN[1])
    assert check is None
    assert why == f"kcli check off: no kcli config at {tmp_path / 'missing.yml'}"
    check, why = available_check(config, str(tmp_path / "no-such-kcli"))
    assert check is None
    assert why.endswith("no-such-kcli not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    check, why = available_check(_config(empty, "default:\n  client: lab\n"), STAND_IN[1])
    assert check is None
    assert why.endswith("names no KVM client")
    check, why = available_check(config, STAND_IN[1], timeout=7)
    assert check is not None
    assert (list(check.clients), tuple(check.command), check.timeout) == (["lab"], (STAND_IN[1],), 7)
    assert why == f"kcli check of lab with {STAND_IN[1]}"
