"""Tests of the systemd probes (qubinode_recovery_provider.diagnosis.probes.systemd).

A fake ``systemctl`` placed first on ``PATH`` prints recorded output.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from support.probe_fakes import SYSTEMCTL_SHOW, write_executable

from qubinode_recovery_provider.diagnosis.probes.systemd import collect_systemd, parse_systemctl_show
from qubinode_recovery_provider.models import Health

NO_SYSTEMD = (
    "System has not been booted with systemd as init system (PID 1). Can't operate.\n"
    "Failed to connect to bus: Host is down\n"
)


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
    write_executable(fake_bin, "systemctl", f'printf "%s\\n" "$@" >> "{argv_log}"\ncat "{recorded_output}"\n')

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
    write_executable(fake_bin, "systemctl", f'cat "{recorded_output}"\necho "some failure" >&2\nexit 1\n')
    services = collect_systemd(["libvirtd.service", "ghost.service"], timeout=5)
    assert services[0].state == Health.HEALTHY
    assert services[1].state == Health.UNKNOWN
    assert "some failure" in services[1].detail


def test_systemd_not_booted_is_unknown(fake_bin: Path, recorded_output: Path) -> None:
    recorded_output.write_text(NO_SYSTEMD, encoding="utf-8")
    write_executable(fake_bin, "systemctl", f'cat "{recorded_output}" >&2\nexit 1\n')
    services = collect_systemd(["libvirtd.service", "vault.service"], timeout=5)
    assert [s.state for s in services] == [Health.UNKNOWN, Health.UNKNOWN]
    assert "systemd unavailable" in services[0].detail


def test_systemd_binary_absent_is_unknown(empty_path: None) -> None:
    services = collect_systemd(["libvirtd.service"], timeout=1)
    assert services[0].state == Health.UNKNOWN
    assert services[0].detail == "systemctl not found on PATH"


def test_systemd_timeout_is_unknown_and_bounded(fake_bin: Path) -> None:
    write_executable(fake_bin, "systemctl", "exec sleep 60\n")
    started = time.monotonic()
    services = collect_systemd(["libvirtd.service"], timeout=0.3)
    # The probe is cut by its timeout, not by the 60 s hang ending (wide margin: noisy machines).
    assert time.monotonic() - started < 30
    assert services[0].state == Health.UNKNOWN
    assert "timed out" in services[0].detail


def test_systemd_option_like_names_are_never_passed(fake_bin: Path, tmp_path: Path) -> None:
    marker = tmp_path / "called"
    write_executable(fake_bin, "systemctl", f'touch "{marker}"\n')
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
