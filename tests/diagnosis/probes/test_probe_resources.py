"""Tests of the resource probes (qubinode_recovery_provider.diagnosis.probes.resources)."""

from __future__ import annotations

import resource
import shutil

import pytest

from qubinode_recovery_provider.diagnosis.probes.resources import collect_resources, resource_state
from qubinode_recovery_provider.models import DiskUsage, Health, ResourceSnapshot


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
