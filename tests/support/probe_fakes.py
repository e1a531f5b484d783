"""Fakes for the context probes' tests (tests/diagnosis and tests/diagnosis/probes): recorded
``systemctl show`` output, fake tools on ``PATH`` and the wait for abandoned probe threads."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

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


def write_executable(directory: Path, name: str, body: str) -> Path:
    """Write a ``/bin/sh`` script ``name`` into ``directory`` (a fake tool put first on ``PATH``)."""
    path = directory / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def join_probe_threads() -> None:
    """Wait for abandoned probe threads (each is bounded by its own timeout)."""
    for thread in threading.enumerate():
        if thread.name.startswith("qrp-probe-"):
            thread.join(10)
