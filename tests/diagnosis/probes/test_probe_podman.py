"""Tests of the podman probes (qubinode_recovery_provider.diagnosis.probes.podman).

A fake ``podman`` placed first on ``PATH`` prints recorded ``podman inspect`` output.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from support.probe_fakes import write_executable

from qubinode_recovery_provider.diagnosis.probes.podman import collect_podman
from qubinode_recovery_provider.models import Health


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


def test_podman_states_from_a_fake_podman(fake_bin: Path, recorded_output: Path, tmp_path: Path) -> None:
    recorded_output.write_text(json.dumps(PODMAN_RECORDS, indent=4), encoding="utf-8")
    argv_log = tmp_path / "argv"
    write_executable(
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
    write_executable(fake_bin, "podman", f'cat "{recorded_output}"\n')
    prefix = str(PODMAN_RECORDS[0]["Id"])[:12]
    assert collect_podman([prefix], timeout=5)[0].state == Health.HEALTHY


def test_podman_absent_is_unknown(empty_path: None) -> None:
    services = collect_podman(["vault"], timeout=1)
    assert services[0].state == Health.UNKNOWN
    assert services[0].detail == "podman not found on PATH"


def test_podman_broken_engine_is_unknown(fake_bin: Path) -> None:
    write_executable(
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
