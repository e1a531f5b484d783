"""Tests of the context collector (qubinode_recovery_provider.diagnosis.context): the probes of
diagnosis/probes combined, within one deadline, with the configuration's defaults.

The subprocess boundary is tested for real: fake ``systemctl`` / ``podman`` executables placed first on
``PATH`` print recorded output. Network probes only ever talk to loopback sockets.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

import pytest
from support import processes
from support.probe_fakes import SYSTEMCTL_SHOW, join_probe_threads, write_executable

from qubinode_recovery_provider.diagnosis.context import ContextCollector, collect_context
from qubinode_recovery_provider.diagnosis.probes.network import check_reachability
from qubinode_recovery_provider.diagnosis.probes.systemd import collect_systemd
from qubinode_recovery_provider.models import Health


def test_collector_builds_a_full_context(
    fake_bin: Path, recorded_output: Path, listener: socket.socket, isolated_config: None
) -> None:
    recorded_output.write_text(SYSTEMCTL_SHOW, encoding="utf-8")
    write_executable(fake_bin, "systemctl", f'cat "{recorded_output}"\n')
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
    write_executable(fake_bin, "systemctl", 'echo "Failed to connect to bus: Host is down" >&2\nexit 1\n')
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
    write_executable(fake_bin, "systemctl", "exec sleep 60\n")
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
    libvirtd = context.service("libvirtd")
    assert libvirtd is not None
    assert libvirtd.state == Health.UNKNOWN
    # Either the deadline cut the probe, or the probe's own timeout (cut to the deadline) killed its
    # command first -- on a busy machine the two end within moments of each other. Both say why.
    missed = any("systemd probe did not finish" in e for e in context.probe_errors)
    killed = "systemctl timed out after" in libvirtd.detail
    assert missed or killed, (context.probe_errors, libvirtd.detail)
    assert context.resources.state != Health.UNKNOWN
    join_probe_threads()  # the probe's own timeout is cut to the deadline: it ends, its command killed


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
