"""Tests of the context collectors (qubinode_recovery_provider.diagnosis.context).

The subprocess boundary is tested for real: fake ``systemctl`` / ``podman`` executables placed first on
``PATH`` print recorded output. Network probes only ever talk to loopback sockets.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import socket
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import processes

from qubinode_recovery_provider.diagnosis.context import (
    ContextCollector,
    check_reachability,
    collect_context,
    collect_podman,
    collect_resources,
    collect_systemd,
    dependents_of,
    normalize_dependency_map,
    parse_systemctl_show,
    parse_target,
    resource_state,
    run_bounded,
)
from qubinode_recovery_provider.models import DiskUsage, Health, ResourceSnapshot

# Recorded from `systemctl show --property=Id,LoadState,ActiveState,SubState,Result,NRestarts,ExecMainStatus`
# on a RHEL 9 hypervisor (properties come back in systemd's own order, not the requested one).
SYSTEMCTL_SHOW = """\
Id=libvirtd.service
NRestarts=0
ExecMainStatus=0
Result=success
LoadState=loaded
ActiveState=active
SubState=running

Id=virtqemud.service
NRestarts=0
ExecMainStatus=1
Result=exit-code
LoadState=loaded
ActiveState=failed
SubState=failed

Id=vault.service
NRestarts=0
ExecMainStatus=0
Result=success
LoadState=not-found
ActiveState=inactive
SubState=dead

Id=podman.socket
NRestarts=0
Result=success
LoadState=loaded
ActiveState=activating
SubState=listening

Id=sshd.service
NRestarts=3
ExecMainStatus=0
Result=success
LoadState=loaded
ActiveState=active
SubState=running

Id=chronyd.service
NRestarts=0
ExecMainStatus=0
Result=success
LoadState=loaded
ActiveState=inactive
SubState=dead
"""

NO_SYSTEMD = (
    "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
    "Failed to connect to bus: Host is down\n"
)


def _container(name: str, status: str, **state: object) -> dict[str, object]:
    """A trimmed `podman inspect --format json` record (podman 4.9)."""
    full_state: dict[str, object] = {
        "OciVersion": "1.1.0",
        "Status": status,
        "Running": status == "running",
        "Paused": status == "paused",
        "Restarting": False,
        "OOMKilled": False,
        "Dead": False,
        "Pid": 4242 if status == "running" else 0,
        "ExitCode": 0,
        "Error": "",
        "StartedAt": "2026-11-28T05:55:01.123456789Z",
        "FinishedAt": "0001-01-01T00:00:00Z",
    }
    full_state.update(state)
    return {
        "Id": f"{abs(hash(name)):016x}" * 4,
        "Created": "2026-11-27T09:00:00.000000000Z",
        "Path": "/usr/bin/dumb-init",
        "State": full_state,
        "Image": "3f2b" * 16,
        "ImageName": f"quay.io/example/{name}:latest",
        "Name": name,
        "RestartCount": 0,
        "Driver": "overlay",
    }


PODMAN_RECORDS = [
    _container(
        "airflow-scheduler",
        "running",
        Health={"Status": "healthy", "FailingStreak": 0, "Log": []},
    ),
    _container("vault", "exited", ExitCode=137, OOMKilled=True, FinishedAt="2026-11-28T06:01:02Z"),
    _container("marquez", "running", Health={"Status": "unhealthy", "FailingStreak": 4, "Log": []}),
    _container("postgres", "paused"),
]


# ---------------------------------------------------------------------------------------- fixtures


def _executable(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory put first on PATH for fake tools (the rest of PATH stays for `cat`, `sleep`)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    return directory


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH on which no tool at all can be found."""
    directory = tmp_path / "nothing"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))


@pytest.fixture
def recorded_output(tmp_path: Path) -> Path:
    return tmp_path / "output"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield server
    server.close()


@pytest.fixture
def closed_port() -> int:
    """A loopback port that nothing listens on (bound then released)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


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


# --------------------------------------------------------------------------------------- resources


def test_collect_resources_measures_this_machine() -> None:
    snapshot = collect_resources(cpu_interval=0.05)
    assert snapshot.state in {Health.HEALTHY, Health.DEGRADED, Health.DOWN}
    assert snapshot.cpu_count is not None
    assert snapshot.cpu_count >= 1
    assert snapshot.cpu_percent is not None
    assert 0.0 <= snapshot.cpu_percent <= 100.0
    assert snapshot.memory_percent is not None
    assert 0.0 < snapshot.memory_percent <= 100.0
    assert snapshot.memory_available_bytes
    assert snapshot.memory_available_bytes > 0
    assert snapshot.swap_percent is not None
    assert len(snapshot.load_average) == 3
    assert snapshot.open_files is not None
    assert snapshot.open_files >= 3
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    assert snapshot.open_files_limit == (None if soft == resource.RLIM_INFINITY else soft)
    assert snapshot.disks, "no mounted filesystem was measured"
    for disk in snapshot.disks:
        assert disk.mount
        assert disk.percent is not None
        assert 0.0 <= disk.percent <= 100.0
        assert disk.free_bytes is not None
        assert disk.free_bytes >= 0
        assert disk.read_only in {True, False}
    root = next((d for d in snapshot.disks if d.mount == "/"), None)
    if root is not None:
        assert root.free_bytes == pytest.approx(shutil.disk_usage("/").free, rel=0.05)


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        (ResourceSnapshot(memory_percent=40.0, disks=[DiskUsage(mount="/", percent=50.0)]), Health.HEALTHY),
        (ResourceSnapshot(memory_percent=92.0), Health.DEGRADED),
        (ResourceSnapshot(memory_percent=96.0), Health.DOWN),
        (
            ResourceSnapshot(memory_percent=10.0, disks=[DiskUsage(mount="/var", percent=91.0)]),
            Health.DEGRADED,
        ),
        (ResourceSnapshot(memory_percent=10.0, disks=[DiskUsage(mount="/var", percent=98.0)]), Health.DOWN),
        (
            ResourceSnapshot(
                memory_percent=10.0, disks=[DiskUsage(mount="/", percent=5.0, inodes_percent=99.0)]
            ),
            Health.DOWN,
        ),
        (ResourceSnapshot(memory_percent=10.0, open_files=950, open_files_limit=1024), Health.DEGRADED),
        (ResourceSnapshot(), Health.UNKNOWN),
    ],
)
def test_resource_state_thresholds(snapshot: ResourceSnapshot, expected: Health) -> None:
    state, reasons = resource_state(snapshot)
    assert state == expected
    assert bool(reasons) == (expected != Health.HEALTHY)


def test_resource_down_reasons_name_the_mount() -> None:
    snapshot = ResourceSnapshot(
        memory_percent=10.0, disks=[DiskUsage(mount="/var/lib/libvirt", percent=99.2)]
    )
    state, reasons = resource_state(snapshot)
    assert state == Health.DOWN
    assert reasons == ["/var/lib/libvirt 99.2% full"]


# ----------------------------------------------------------------------------------------- systemd


def test_parse_systemctl_show_blocks() -> None:
    blocks = parse_systemctl_show(SYSTEMCTL_SHOW)
    assert [b["Id"] for b in blocks] == [
        "libvirtd.service",
        "virtqemud.service",
        "vault.service",
        "podman.socket",
        "sshd.service",
        "chronyd.service",
    ]
    assert blocks[1]["ExecMainStatus"] == "1"


def test_systemd_states_from_a_fake_systemctl(fake_bin: Path, recorded_output: Path, tmp_path: Path) -> None:
    recorded_output.write_text(SYSTEMCTL_SHOW, encoding="utf-8")
    argv_log = tmp_path / "argv"
    _executable(fake_bin, "systemctl", f'printf "%s\\n" "$@" >> "{argv_log}"\ncat "{recorded_output}"\n')

    units = ["libvirtd", "virtqemud.service", "vault.service", "podman.socket", "sshd", "chronyd.service"]
    services = {s.name: s for s in collect_systemd(units, timeout=5)}

    assert [s for s in services] == units
    assert all(s.kind == "systemd" for s in services.values())
    assert services["libvirtd"].state == Health.HEALTHY
    assert services["virtqemud.service"].state == Health.DOWN
    assert "exit-code" in services["virtqemud.service"].detail
    assert "exit status=1" in services["virtqemud.service"].detail
    assert services["vault.service"].state == Health.DOWN
    assert services["vault.service"].detail == "not installed"
    assert services["podman.socket"].state == Health.DEGRADED
    assert services["sshd"].state == Health.DEGRADED
    assert "restarted 3 times" in services["sshd"].detail
    assert services["chronyd.service"].state == Health.DOWN

    argv = argv_log.read_text(encoding="utf-8").splitlines()
    assert argv[0] == "show"
    assert "--property=Id,LoadState,ActiveState,SubState,Result,NRestarts,ExecMainStatus" in argv
    assert argv[argv.index("--") + 1 :] == units, "one call, all units, after --"


def test_systemd_missing_block_is_unknown(fake_bin: Path, recorded_output: Path) -> None:
    recorded_output.write_text(SYSTEMCTL_SHOW.split("\n\n")[0] + "\n", encoding="utf-8")
    _executable(fake_bin, "systemctl", f'cat "{recorded_output}"\necho "some failure" >&2\nexit 1\n')
    services = collect_systemd(["libvirtd.service", "ghost.service"], timeout=5)
    assert services[0].state == Health.HEALTHY
    assert services[1].state == Health.UNKNOWN
    assert "some failure" in services[1].detail


def test_systemd_not_booted_is_unknown(fake_bin: Path, recorded_output: Path) -> None:
    recorded_output.write_text(NO_SYSTEMD, encoding="utf-8")
    _executable(fake_bin, "systemctl", f'cat "{recorded_output}" >&2\nexit 1\n')
    services = collect_systemd(["libvirtd.service", "vault.service"], timeout=5)
    assert [s.state for s in services] == [Health.UNKNOWN, Health.UNKNOWN]
    assert "systemd unavailable" in services[0].detail


def test_systemd_binary_absent_is_unknown(empty_path: None) -> None:
    services = collect_systemd(["libvirtd.service"], timeout=1)
    assert services[0].state == Health.UNKNOWN
    assert services[0].detail == "systemctl not found on PATH"


def test_systemd_timeout_is_unknown_and_bounded(fake_bin: Path) -> None:
    _executable(fake_bin, "systemctl", "exec sleep 60\n")
    started = time.monotonic()
    services = collect_systemd(["libvirtd.service"], timeout=0.3)
    # The probe is cut by its timeout, not by the 60 s hang ending (wide margin: noisy machines).
    assert time.monotonic() - started < 30
    assert services[0].state == Health.UNKNOWN
    assert "timed out" in services[0].detail


def test_systemd_option_like_names_are_never_passed(fake_bin: Path, tmp_path: Path) -> None:
    marker = tmp_path / "called"
    _executable(fake_bin, "systemctl", f'touch "{marker}"\n')
    services = collect_systemd(["--root=/", "bad name"], timeout=1)
    assert [s.state for s in services] == [Health.UNKNOWN, Health.UNKNOWN]
    assert not marker.exists()


def test_real_systemctl_on_this_machine_never_raises() -> None:
    """Whatever this machine has (no systemctl, systemctl without systemd, real systemd), no exception."""
    services = collect_systemd(["qubinode-surely-absent-unit.service"], timeout=3)
    assert len(services) == 1
    if shutil.which("systemctl") is None:
        assert services[0].state == Health.UNKNOWN
    elif os.path.isdir("/run/systemd/system"):
        assert services[0].state == Health.DOWN
        assert services[0].detail == "not installed"
    else:
        assert services[0].state == Health.UNKNOWN


# ------------------------------------------------------------------------------------------ podman


def test_podman_states_from_a_fake_podman(fake_bin: Path, recorded_output: Path, tmp_path: Path) -> None:
    recorded_output.write_text(json.dumps(PODMAN_RECORDS, indent=4), encoding="utf-8")
    argv_log = tmp_path / "argv"
    _executable(
        fake_bin,
        "podman",
        f'printf "%s\\n" "$@" >> "{argv_log}"\ncat "{recorded_output}"\n'
        'echo "Error: no such container ghost" >&2\nexit 125\n',
    )
    names = ["airflow-scheduler", "vault", "marquez", "postgres", "ghost"]
    services = {s.name: s for s in collect_podman(names, timeout=5)}

    assert services["airflow-scheduler"].state == Health.HEALTHY
    assert services["vault"].state == Health.DOWN
    assert "exit code 137" in services["vault"].detail
    assert "OOM killed" in services["vault"].detail
    assert services["marquez"].state == Health.DEGRADED
    assert "unhealthy" in services["marquez"].detail
    assert services["postgres"].state == Health.DEGRADED
    assert services["ghost"].state == Health.DOWN
    assert services["ghost"].detail == "no such container"
    assert all(s.kind == "podman" for s in services.values())

    argv = argv_log.read_text(encoding="utf-8").splitlines()
    assert argv[:5] == ["inspect", "--type", "container", "--format", "json"]
    assert argv[argv.index("--") + 1 :] == names


def test_podman_container_found_by_id_prefix(fake_bin: Path, recorded_output: Path) -> None:
    recorded_output.write_text(json.dumps(PODMAN_RECORDS[:1]), encoding="utf-8")
    _executable(fake_bin, "podman", f'cat "{recorded_output}"\n')
    prefix = str(PODMAN_RECORDS[0]["Id"])[:12]
    assert collect_podman([prefix], timeout=5)[0].state == Health.HEALTHY


def test_podman_absent_is_unknown(empty_path: None) -> None:
    services = collect_podman(["vault"], timeout=1)
    assert services[0].state == Health.UNKNOWN
    assert services[0].detail == "podman not found on PATH"


def test_podman_broken_engine_is_unknown(fake_bin: Path) -> None:
    _executable(
        fake_bin,
        "podman",
        'echo "Error: unable to connect to Podman socket: connection refused" >&2\nexit 125\n',
    )
    services = collect_podman(["vault"], timeout=5)
    assert services[0].state == Health.UNKNOWN
    assert "unable to connect to Podman socket" in services[0].detail


def test_podman_real_binary_on_this_machine_never_raises() -> None:
    services = collect_podman(["qubinode-surely-absent-container"], timeout=3)
    if shutil.which("podman") is None:
        assert services[0].state == Health.UNKNOWN
    else:
        assert services[0].state in {Health.DOWN, Health.UNKNOWN}


# ------------------------------------------------------------------------------------------ network


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


# ---------------------------------------------------------------------------------- dependency map


def test_dependents_are_transitive_and_cycle_safe() -> None:
    mapping = {
        "libvirtd": ["kcli", "virsh"],
        "kcli": ["deploy_vm_dag", "libvirtd.service"],
        "deploy_vm_dag": ["kcli"],
        "vault.service": ["ansible"],
    }
    assert dependents_of("libvirtd.service", mapping) == ["kcli", "virsh", "deploy_vm_dag"]
    assert dependents_of("vault", mapping) == ["ansible"]
    assert dependents_of("kcli", mapping) == ["deploy_vm_dag", "libvirtd.service", "virsh"]
    assert dependents_of("nothing", mapping) == []


def test_normalize_dependency_map() -> None:
    mapping, errors = normalize_dependency_map({"a": ["b"], "c": "d", "e": 5})
    assert mapping == {"a": ["b"], "c": ["d"]}
    assert len(errors) == 1
    assert "'e'" in errors[0]
    assert normalize_dependency_map([1, 2]) == ({}, ["dependency_map must be a JSON object, got list"])
    assert normalize_dependency_map(None) == ({}, [])


# ---------------------------------------------------------------------------------------- collector


def test_run_bounded_reports_errors_and_stragglers() -> None:
    def fail() -> int:
        raise RuntimeError("probe exploded")

    release = threading.Event()
    try:
        outcomes = run_bounded([lambda: 1, fail, lambda: release.wait(30)], timeout=0.3)
    finally:
        release.set()  # the straggler ends with the test
    _join_probe_threads()
    assert outcomes[0] == ("done", 1)
    assert outcomes[1][0] == "error:RuntimeError: probe exploded"
    assert outcomes[2][0] == "running"


def _join_probe_threads() -> None:
    """Wait for abandoned probe threads (each is bounded by its own timeout)."""
    for thread in threading.enumerate():
        if thread.name.startswith("qrp-probe-"):
            thread.join(10)


def test_collector_builds_a_full_context(
    fake_bin: Path, recorded_output: Path, listener: socket.socket, isolated_config: None
) -> None:
    recorded_output.write_text(SYSTEMCTL_SHOW, encoding="utf-8")
    _executable(fake_bin, "systemctl", f'cat "{recorded_output}"\n')
    port = listener.getsockname()[1]

    context = collect_context(
        systemd_units=["libvirtd.service", "vault.service"],
        podman_containers=[],
        reachability_targets=[f"127.0.0.1:{port}"],
        timeout=2,
        log_lines=["line 1", "ConnectionRefusedError: refused"],
    )

    assert context.host == socket.gethostname()
    assert context.service("libvirtd").state == Health.HEALTHY
    assert context.service("vault").state == Health.DOWN
    assert context.network[0].state == Health.HEALTHY
    assert context.resources.state != Health.UNKNOWN
    assert context.log_lines == ["line 1", "ConnectionRefusedError: refused"]
    assert "libvirtd" in context.dependency_map  # the configured default
    assert context.probe_errors == []
    json.loads(context.model_dump_json())


def test_collector_defaults_come_from_config(
    fake_bin: Path, isolated_config: None, monkeypatch: pytest.MonkeyPatch, closed_port: int
) -> None:
    _executable(fake_bin, "systemctl", 'echo "Failed to connect to bus: Host is down" >&2\nexit 1\n')
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__SYSTEMD_UNITS", "libvirtd.service, vault.service")
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__REACHABILITY_TARGETS", f"127.0.0.1:{closed_port}")
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__PROBE_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__DEPENDENCY_MAP", '{"libvirtd": ["kcli"]}')

    collector = ContextCollector()
    assert collector.timeout == 0.5
    context = collector.collect()

    assert [s.name for s in context.services] == ["libvirtd.service", "vault.service"]
    assert all(s.state == Health.UNKNOWN for s in context.services)
    assert context.network[0].state == Health.DOWN
    assert context.dependency_map == {"libvirtd": ["kcli"]}
    assert collector.dependents_of("libvirtd.service") == ["kcli"]


def test_bad_config_becomes_probe_errors(
    empty_path: None, isolated_config: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__DEPENDENCY_MAP", '{"libvirtd": [kcli')
    monkeypatch.setenv("AIRFLOW__QUBINODE_RECOVERY__PROBE_TIMEOUT_SECONDS", "fast")

    context = collect_context(
        systemd_units=["libvirtd"], podman_containers=["vault"], reachability_targets=[]
    )

    assert context.dependency_map == {}
    assert any("dependency_map" in e and "not valid JSON" in e for e in context.probe_errors)
    assert any("probe_timeout_seconds" in e for e in context.probe_errors)
    assert context.service("libvirtd").state == Health.UNKNOWN
    assert context.service("vault").detail == "podman not found on PATH"


def test_bad_dependency_map_argument_is_a_probe_error(empty_path: None, isolated_config: None) -> None:
    context = collect_context(
        systemd_units=[], podman_containers=[], reachability_targets=[], dependency_map="[not json"
    )
    assert context.dependency_map == {}
    assert len(context.probe_errors) == 1


def test_overall_deadline_bounds_a_hanging_probe(fake_bin: Path, isolated_config: None) -> None:
    _executable(fake_bin, "systemctl", "exec sleep 60\n")
    started = time.monotonic()
    context = collect_context(
        systemd_units=["libvirtd.service"],
        podman_containers=[],
        reachability_targets=[],
        timeout=5,
        deadline=0.5,
    )
    # Cut by the 0.5 s deadline, not by the 5 s probe timeout or the 60 s hang.
    assert time.monotonic() - started < 4.5
    assert context.service("libvirtd").state == Health.UNKNOWN
    assert any("systemd probe did not finish" in e for e in context.probe_errors)
    assert context.resources.state != Health.UNKNOWN
    _join_probe_threads()  # the probe's own timeout is cut to the deadline: it ends, its command killed


def test_collect_context_is_importable_without_airflow() -> None:
    code = (
        "import sys\n"
        "import qubinode_recovery_provider.diagnosis.context\n"
        "import qubinode_recovery_provider.diagnosis.logs\n"
        "loaded = [m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')]\n"
        "assert not loaded, loaded\n"
    )
    processes.run([sys.executable, "-c", code], check=True, timeout=60)


def test_comma_separated_strings_are_accepted(listener: socket.socket, empty_path: None) -> None:
    port = listener.getsockname()[1]
    results = check_reachability(f"127.0.0.1:{port}, [::1]:notaport", timeout=1)
    assert [r.state for r in results] == [Health.HEALTHY, Health.UNKNOWN]
    services = collect_systemd("libvirtd.service, vault.service", timeout=1)
    assert [s.name for s in services] == ["libvirtd.service", "vault.service"]
    collector = ContextCollector(
        systemd_units="a.service,b.service", podman_containers="", reachability_targets="", dependency_map={}
    )
    assert collector.systemd_units == ["a.service", "b.service"]
    assert collector.podman_containers == []
