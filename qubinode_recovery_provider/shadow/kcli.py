"""kcli beside libvirt: hosts from kcli's client config, and kcli's own view of each host checked.

kcli keeps its hypervisors in ``~/.kcli/config.yml``: one top-level key per client, a ``default`` block
whose ``client`` names the default one::

    default:
      client: lab
    lab:
      type: kvm            # the default type
      host: 192.168.122.1
      user: root
      protocol: ssh        # qemu+ssh://root@192.168.122.1/system
    local:
      host: 127.0.0.1      # qemu:///system
    kvm2:
      url: qemu+ssh://admin@kvm2.lab/system?no_tty=1

:func:`read_kcli_config` turns every KVM client into an
:class:`~qubinode_recovery_provider.shadow.inventory.InventoryTarget` named after the client (so
``libvirt_domain(host="lab")`` and an inferred ``kcli -C lab create vm ...`` both land on it): the
scan lists those hosts when no libvirt connection is declared.

:func:`kcli_view` runs ``kcli -C CLIENT list vm`` as an external command (an argument list, never a
shell; killed after its timeout) and reads its table. :func:`kcli_findings` compares that view with the
libvirt listing of the same host: kcli failing (not installed, refused, timed out) or disagreeing
(VMs only one of them lists, up in one and down in the other) is a ``kcli_check_failed`` finding.
Plain Python, no Airflow.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qubinode_recovery_provider.models import Severity, ShadowError, ShadowErrorType, utcnow
from qubinode_recovery_provider.redaction import redact
from qubinode_recovery_provider.shadow.inventory import DEFAULT_TIMEOUT, InventoryTarget
from qubinode_recovery_provider.shadow.records import RUNNING_STATES, HostInventory

DEFAULT_CONFIG = Path("~/.kcli/config.yml")
#: Largest config file and largest ``kcli list vm`` output read.
MAX_BYTES = 1 << 20
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
_UP = frozenset({"up", "running"})
CONFIDENCE = {"failed": 0.9, "disagrees": 0.75}


class KcliConfigError(ValueError):
    """kcli's config file cannot be read or is not kcli's format."""


@dataclass(frozen=True, slots=True)
class KcliClient:
    """One KVM client of kcli's config: its name (``kcli -C NAME``) and the libvirt URI kcli uses."""

    name: str
    uri: str


def read_kcli_config(path: str | Path = DEFAULT_CONFIG) -> tuple[str | None, list[KcliClient]]:
    """``(default client, KVM clients)`` of a kcli config file.

    :raises KcliConfigError: when the file cannot be read or is not a mapping of clients
    """
    import yaml

    file = Path(path).expanduser()
    try:
        if file.stat().st_size > MAX_BYTES:
            raise KcliConfigError(f"kcli config {file} is larger than {MAX_BYTES} bytes")
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KcliConfigError(f"cannot read kcli config {file}: {exc.strerror or exc}") from None
    except (yaml.YAMLError, RecursionError, ValueError) as exc:
        raise KcliConfigError(f"kcli config {file} is not YAML: {str(exc).splitlines()[0][:120]}") from None
    if not isinstance(data, dict):
        raise KcliConfigError(f"kcli config {file}: expected a mapping of clients")
    default: dict[str, Any] = data["default"] if isinstance(data.get("default"), dict) else {}
    clients = [
        KcliClient(str(name), client_uri({**default, **spec}))
        for name, spec in data.items()
        if name != "default" and isinstance(spec, dict) and str(spec.get("type", "kvm")) == "kvm"
    ]
    chosen = default.get("client")
    return (str(chosen) if chosen else None), clients


def client_uri(spec: Mapping[str, Any]) -> str:
    """The libvirt URI kcli builds for a KVM client: its ``url``, else from ``host``, ``user``,
    ``protocol``, ``port`` and ``session``."""
    if spec.get("url"):
        return str(spec["url"])
    host = str(spec.get("host") or "127.0.0.1")
    path = "session" if spec.get("session") else "system"
    if host in _LOCAL_HOSTS:
        return f"qemu:///{path}"
    protocol = str(spec.get("protocol") or "ssh")
    user = str(spec.get("user") or "root")
    port = f":{spec['port']}" if spec.get("port") and str(spec.get("port")) != "22" else ""
    return f"qemu+{protocol}://{user}@{host}{port}/{path}"


def kcli_targets(
    path: str | Path = DEFAULT_CONFIG, timeout: float = DEFAULT_TIMEOUT
) -> list[InventoryTarget]:
    """The libvirt hosts of kcli's config, each named after its client."""
    _, clients = read_kcli_config(path)
    return [InventoryTarget(uri=c.uri, host=c.name, timeout=timeout) for c in clients]


# --- kcli's own view ---------------------------------------------------------------------------------


@dataclass
class KcliView:
    """What ``kcli -C CLIENT list vm`` said: VM name -> status (``up``/``down``), or why it failed."""

    client: str
    command: str
    vms: dict[str, str] | None = None
    error: str | None = None


def kcli_view(client: str, command: Sequence[str] = ("kcli",), timeout: float = DEFAULT_TIMEOUT) -> KcliView:
    """Run ``kcli -C CLIENT list vm`` (no shell; killed after ``timeout`` seconds) and read its table."""
    argv = [*command, "-C", client, "list", "vm"]
    shown = " ".join(["kcli", "-C", client, "list", "vm"])
    try:
        # an argument list built here (the client is a name from kcli's own config), no shell
        proc = subprocess.run(  # noqa: S603
            argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return KcliView(client, shown, error=f"no answer within {timeout:g} s")
    except OSError as exc:
        return KcliView(client, shown, error=f"cannot run {command[0]}: {exc.strerror or exc}")
    out = proc.stdout[:MAX_BYTES].decode("utf-8", "replace")
    if proc.returncode != 0:
        err = proc.stderr[:MAX_BYTES].decode("utf-8", "replace").strip().splitlines()
        return KcliView(client, shown, error=f"exit {proc.returncode}: {(err or ['no message'])[-1][:300]}")
    vms = parse_vm_table(out)
    if vms is None:
        return KcliView(client, shown, error="its output has no Name/Status table")
    return KcliView(client, shown, vms=vms)


def parse_vm_table(text: str) -> dict[str, str] | None:
    """``name -> status`` from ``kcli list vm`` output (its PrettyTable, or plain columns); None when no
    row has both a ``Name`` and a ``Status`` column."""
    columns: tuple[int, int] | None = None
    vms: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("+"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if "|" in line else line.split()
        lowered = [c.lower() for c in cells]
        if columns is None:
            if "name" in lowered and "status" in lowered:
                columns = (lowered.index("name"), lowered.index("status"))
            continue
        if len(cells) > max(columns) and cells[columns[0]]:
            vms[cells[columns[0]]] = cells[columns[1]].lower()
    return vms if columns is not None else None


# --- the check -----------------------------------------------------------------------------------------


@dataclass
class KcliCheck:
    """Compare kcli's view of the hosts it knows with libvirt's listing.

    :param clients: the host names that are kcli clients (from its config)
    :param command: how to run kcli (``("kcli",)``, or a path)
    :param timeout: seconds per host
    """

    clients: Iterable[str]
    command: Sequence[str] = ("kcli",)
    timeout: float = DEFAULT_TIMEOUT
    views: list[KcliView] = field(default_factory=list)

    def run(self, inventories: Sequence[HostInventory]) -> list[ShadowError]:
        """The ``kcli_check_failed`` findings for the listed, reachable hosts that are kcli clients."""
        wanted = set(self.clients)
        findings = []
        for inventory in inventories:
            if inventory.host not in wanted or not inventory.reachable:
                continue
            view = kcli_view(inventory.host, self.command, self.timeout)
            self.views.append(view)
            finding = kcli_finding(inventory, view)
            if finding is not None:
                findings.append(finding)
        return findings


def available_check(
    path: str | Path | None = None, command: str = "kcli", timeout: float = DEFAULT_TIMEOUT
) -> tuple[KcliCheck | None, str]:
    """The check of the hosts of kcli's config when kcli is set up here: the config file exists and
    names KVM clients, and ``command`` is found (on ``PATH``, or as a path); else None. With a
    sentence saying which hosts are checked, or why nothing is.

    :param path: kcli's config (default ``~/.kcli/config.yml``)
    """
    import shutil

    file = Path(path or DEFAULT_CONFIG).expanduser()
    if not file.is_file():
        return None, f"kcli check off: no kcli config at {file}"
    program = shutil.which(command)
    if program is None:
        return None, f"kcli check off: {command} not found"
    try:
        clients = [c.name for c in read_kcli_config(file)[1]]
    except KcliConfigError as exc:
        return None, f"kcli check off: {exc}"
    if not clients:
        return None, f"kcli check off: {file} names no KVM client"
    return KcliCheck(clients, (program,), timeout), f"kcli check of {', '.join(clients)} with {program}"


def kcli_finding(inventory: HostInventory, view: KcliView) -> ShadowError | None:
    """A ``kcli_check_failed`` finding when kcli failed on the host or disagrees with libvirt."""
    listed = (
        f"libvirt: {redact(inventory.uri)} listed {len(inventory.domains)} domains at {inventory.listed_at}"
    )
    if view.vms is None:
        evidence = [f"kcli: `{view.command}` failed: {redact(view.error or 'unknown error')}", listed]
        return _finding(inventory, "failed", evidence)
    differences = _differences(inventory, view.vms)
    if not differences:
        return None
    evidence = [f"kcli: `{view.command}` lists {len(view.vms)} VMs; {listed}", *differences[:20]]
    if len(differences) > 20:
        evidence.append(f"... {len(differences) - 20} more differences")
    return _finding(inventory, "disagrees", evidence)


def _differences(inventory: HostInventory, vms: Mapping[str, str]) -> list[str]:
    out = []
    for name in sorted(set(vms) - set(inventory.domains)):
        out.append(f"{name}: kcli lists it ({vms[name]}), libvirt does not")
    for name in sorted(set(inventory.domains) - set(vms)):
        out.append(f"{name}: libvirt lists it ({inventory.domains[name].state}), kcli does not")
    for name in sorted(set(vms) & set(inventory.domains)):
        kcli_up = vms[name] in _UP
        libvirt_up = inventory.domains[name].state in RUNNING_STATES
        if kcli_up != libvirt_up:
            out.append(f"{name}: kcli says {vms[name]}, libvirt says {inventory.domains[name].state}")
    return out


def _finding(inventory: HostInventory, kind: str, evidence: list[str]) -> ShadowError:
    return ShadowError(
        type=ShadowErrorType.KCLI_CHECK_FAILED,
        resource=f"libvirt://{inventory.host}",
        confidence=CONFIDENCE[kind],
        severity=Severity.MEDIUM,
        evidence=evidence,
        detected_at=utcnow(),
    )
