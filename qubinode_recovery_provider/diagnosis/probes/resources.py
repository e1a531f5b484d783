"""Resource probes: CPU, memory, swap, load, open file descriptors and disks (psutil), and the verdict
on them (:func:`resource_state`)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import psutil

from qubinode_recovery_provider.categories import Health
from qubinode_recovery_provider.diagnosis.probes.commands import error_text

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import DiskUsage, ResourceSnapshot

try:  # POSIX only
    import resource as _resource
except ImportError:  # pragma: no cover - Windows
    _resource = None  # type: ignore[assignment]

MEMORY_DOWN_PERCENT = 95.0
MEMORY_DEGRADED_PERCENT = 90.0
DISK_DOWN_PERCENT = 98.0
DISK_DEGRADED_PERCENT = 90.0
OPEN_FILES_DEGRADED_RATIO = 0.9

#: Filesystems that are always "100 % full" by design and say nothing about free space.
_STATIC_FSTYPES = frozenset({"squashfs", "iso9660", "erofs", "cramfs", "udf"})


def _open_files() -> tuple[int | None, int | None]:
    """Return this process's open file descriptors and its ``RLIMIT_NOFILE`` soft limit."""
    count: int | None = None
    limit: int | None = None
    try:
        process = psutil.Process()
        count = process.num_fds() if hasattr(process, "num_fds") else len(process.open_files())
    except (psutil.Error, OSError):
        count = None
    if _resource is not None:
        try:
            soft, _hard = _resource.getrlimit(_resource.RLIMIT_NOFILE)
            limit = None if soft == _resource.RLIM_INFINITY else int(soft)
        except (OSError, ValueError):
            limit = None
    return count, limit


def _disk_usage(partition: Any) -> DiskUsage:
    """Measure one mounted filesystem; fields that cannot be read stay ``None``.

    :param partition: a :func:`psutil.disk_partitions` entry.
    """
    from qubinode_recovery_provider.models import DiskUsage  # built after the probe

    disk = DiskUsage(mount=partition.mountpoint, read_only="ro" in str(partition.opts).split(","))
    try:
        usage = psutil.disk_usage(partition.mountpoint)
        disk.percent = float(usage.percent)
        disk.free_bytes = int(usage.free)
    except OSError:
        pass
    try:
        stat = os.statvfs(partition.mountpoint)
        if stat.f_files > 0:
            disk.inodes_percent = round((stat.f_files - stat.f_ffree) / stat.f_files * 100.0, 1)
    except (OSError, AttributeError):
        pass
    return disk


def _collect_disks() -> list[DiskUsage]:
    """Measure every real mount once (pseudo and read-only-by-design filesystems are skipped)."""
    disks: list[DiskUsage] = []
    seen: set[str] = set()
    for partition in psutil.disk_partitions(all=False):
        if partition.mountpoint in seen or partition.fstype in _STATIC_FSTYPES:
            continue
        seen.add(partition.mountpoint)
        disks.append(_disk_usage(partition))
    return disks


def _disk_problems(disk: DiskUsage) -> tuple[list[str], list[str]]:
    """Return the (down, degraded) reasons for one disk.

    :param disk: a measured mount.
    """
    down: list[str] = []
    degraded: list[str] = []
    for value, label in ((disk.percent, "full"), (disk.inodes_percent, "of inodes used")):
        if value is None:
            continue
        text = f"{disk.mount} {value:.1f}% {label}"
        if value >= DISK_DOWN_PERCENT:
            down.append(text)
        elif value > DISK_DEGRADED_PERCENT:
            degraded.append(text)
    return down, degraded


def resource_state(snapshot: ResourceSnapshot) -> tuple[Health, list[str]]:
    """Judge a snapshot: DOWN, DEGRADED or HEALTHY, with the reasons.

    :param snapshot: measured resources (its own ``state`` is ignored).
    """
    down: list[str] = []
    degraded: list[str] = []
    memory = snapshot.memory_percent
    if memory is not None and memory > MEMORY_DOWN_PERCENT:
        down.append(f"memory {memory:.1f}% used")
    elif memory is not None and memory > MEMORY_DEGRADED_PERCENT:
        degraded.append(f"memory {memory:.1f}% used")
    for disk in snapshot.disks:
        disk_down, disk_degraded = _disk_problems(disk)
        down += disk_down
        degraded += disk_degraded
    files, limit = snapshot.open_files, snapshot.open_files_limit
    if files is not None and limit and files >= limit * OPEN_FILES_DEGRADED_RATIO:
        degraded.append(f"{snapshot.open_files} of {snapshot.open_files_limit} file descriptors open")
    if down:
        return Health.DOWN, down + degraded
    if degraded:
        return Health.DEGRADED, degraded
    if memory is None and not snapshot.disks:
        return Health.UNKNOWN, ["no resource could be measured"]
    return Health.HEALTHY, []


def _measure(errors: list[str], cpu_interval: float | None) -> dict[str, Any]:
    """The snapshot's fields, field group by field group, noting each group that fails in ``errors``.
    The CPU sample comes first: the model is built once it is over (in a fresh process, building it
    would otherwise delay the sample).

    :param errors: receives one entry per failed measurement.
    :param cpu_interval: passed to :func:`psutil.cpu_percent`.
    """
    values: dict[str, Any] = {}

    def cpu() -> None:
        values["cpu_percent"] = float(psutil.cpu_percent(interval=cpu_interval))
        values["cpu_count"] = psutil.cpu_count()
        values["load_average"] = [round(float(value), 2) for value in psutil.getloadavg()]

    def memory() -> None:
        virtual = psutil.virtual_memory()
        values["memory_percent"] = float(virtual.percent)
        values["memory_available_bytes"] = int(virtual.available)
        values["swap_percent"] = float(psutil.swap_memory().percent)

    def files() -> None:
        values["open_files"], values["open_files_limit"] = _open_files()

    def disks() -> None:
        values["disks"] = _collect_disks()

    for name, step in (("cpu", cpu), ("memory", memory), ("open files", files), ("disks", disks)):
        try:
            step()
        except Exception as exc:
            errors.append(f"{name}: {error_text(exc)}")
    return values


def collect_resources(cpu_interval: float | None = 0.1) -> ResourceSnapshot:
    """Take a psutil snapshot of CPU, memory, swap, load, file descriptors and disks; never raises.

    :param cpu_interval: seconds :func:`psutil.cpu_percent` samples over; ``None`` is non-blocking but
        compares with the previous call (the first call in a process then reports 0.0).
    """
    from qubinode_recovery_provider.models import ResourceSnapshot

    errors: list[str] = []
    # as measured, field by field (unvalidated, as when the fields were set on an empty snapshot)
    snapshot = ResourceSnapshot.model_construct(**_measure(errors, cpu_interval))
    state, reasons = resource_state(snapshot)
    snapshot.state = state
    snapshot.detail = "; ".join(reasons + errors)
    return snapshot
