"""Context collectors: what the machine looked like around a failure.

Every probe is bounded by a short timeout and reports :attr:`Health.UNKNOWN` (with the reason) when its
tool is absent, unreachable or too slow. No function here raises on a probe failure: a diagnosis must
never be lost because the context around it could not be gathered.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psutil

from qubinode_recovery_provider import config
from qubinode_recovery_provider.models import (
    DiagnosticContext,
    DiskUsage,
    Health,
    Reachability,
    ResourceSnapshot,
    ServiceHealth,
)

try:  # POSIX only
    import resource as _resource
except ImportError:  # pragma: no cover - Windows
    _resource = None  # type: ignore[assignment]

T = TypeVar("T")

DEFAULT_TIMEOUT = 2.0
MIN_TIMEOUT = 0.05
MAX_PROBE_THREADS = 16

MEMORY_DOWN_PERCENT = 95.0
MEMORY_DEGRADED_PERCENT = 90.0
DISK_DOWN_PERCENT = 98.0
DISK_DEGRADED_PERCENT = 90.0
OPEN_FILES_DEGRADED_RATIO = 0.9

#: Filesystems that are always "100 % full" by design and say nothing about free space.
_STATIC_FSTYPES = frozenset({"squashfs", "iso9660", "erofs", "cramfs", "udf"})

_SYSTEMD_PROPERTIES = "Id,LoadState,ActiveState,SubState,Result,NRestarts,ExecMainStatus"
_SYSTEMD_UNAVAILABLE_MARKERS = (
    "system has not been booted with systemd",
    "failed to connect to bus",
    "failed to get d-bus connection",
    "running in chroot",
)
_SYSTEMD_TRANSITIONAL = frozenset({"activating", "reloading", "deactivating", "refreshing", "maintenance"})
_PODMAN_DEGRADED_STATUSES = frozenset({"paused", "restarting", "stopping", "removing"})
_PODMAN_DOWN_STATUSES = frozenset({"exited", "stopped", "dead", "created", "configured", "initialized"})


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _sane_timeout(timeout: float | None) -> float:
    """Return a usable probe timeout: positive, finite, at least :data:`MIN_TIMEOUT`.

    :param timeout: the requested timeout in seconds; ``None`` or nonsense gives the default.
    """
    if timeout is None or not isinstance(timeout, int | float) or not math.isfinite(timeout):
        return DEFAULT_TIMEOUT
    return max(float(timeout), MIN_TIMEOUT)


def _error_text(exc: BaseException) -> str:
    """Render an exception as ``Type: message`` for a ``detail`` or ``error`` field.

    :param exc: the exception to render.
    """
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _first_line(text: str) -> str:
    """Return the first non-blank line of ``text`` (empty string when there is none).

    :param text: any text, typically a command's stderr.
    """
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def run_bounded(
    calls: Sequence[Callable[[], T]], timeout: float, max_workers: int = MAX_PROBE_THREADS
) -> list[tuple[str, T | None]]:
    """Run ``calls`` on a small pool of daemon threads and wait at most ``timeout`` seconds.

    Daemon threads are used so that a probe stuck in the kernel (a hung NFS ``statvfs``, a slow name
    resolution) can never hold up the caller or the interpreter's exit.

    :param calls: zero-argument callables to run.
    :param timeout: overall wall-clock budget in seconds.
    :param max_workers: upper bound on the number of threads.
    :return: one ``(status, value)`` per call, in order; status is ``"done"`` (value is the result),
        ``"error:<text>"`` (the call raised), ``"running"`` (still running at the deadline) or
        ``"pending"`` (never started).
    """
    results: list[tuple[str, T | None]] = [("pending", None)] * len(calls)
    if not calls:
        return results
    todo: deque[int] = deque(range(len(calls)))
    lock = threading.Lock()
    finished = threading.Condition(lock)
    remaining = [len(calls)]

    def worker() -> None:
        while True:
            with lock:
                if not todo:
                    return
                index = todo.popleft()
                results[index] = ("running", None)
            try:
                outcome: tuple[str, T | None] = ("done", calls[index]())
            except Exception as exc:
                outcome = (f"error:{_error_text(exc)}", None)
            with lock:
                results[index] = outcome
                remaining[0] -= 1
                finished.notify_all()

    for number in range(max(1, min(max_workers, len(calls)))):
        threading.Thread(target=worker, name=f"qrp-probe-{number}", daemon=True).start()
    deadline = time.monotonic() + max(timeout, 0.0)
    with lock:
        while remaining[0] > 0:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            finished.wait(left)
        return list(results)


@dataclass(frozen=True)
class CommandResult:
    """Outcome of one external command; ``error`` is set when it could not run or timed out."""

    returncode: int | None = None
    stdout: str = ""
    stderr: str = ""
    error: str = ""


def run_command(argv: Sequence[str], timeout: float) -> CommandResult:
    """Run ``argv`` (no shell) with a timeout; never raises.

    :param argv: program name (looked up on ``PATH``) and its arguments.
    :param timeout: seconds before the process is killed.
    """
    program = shutil.which(argv[0])
    if program is None:
        return CommandResult(error=f"{argv[0]} not found on PATH")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
    try:
        # argv is a fixed command plus validated unit/container names; no shell is involved. Its own
        # session, so a timeout kills everything it started (a wrapper script's children too).
        proc = subprocess.Popen(  # noqa: S603
            [program, *argv[1:]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
            start_new_session=True,
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return CommandResult(error=f"{argv[0]} could not run: {_error_text(exc)}")
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return CommandResult(error=f"{argv[0]} timed out after {timeout:g}s")
    finally:
        if proc.poll() is None:  # an exception other than the timeout: leave nothing behind
            _kill_group(proc)
    return CommandResult(returncode=proc.returncode, stdout=stdout, stderr=stderr)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """Kill the process and everything in its session, then reap it (bounded)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired, ValueError, OSError):
        proc.communicate(timeout=1.0)


def _clean(items: Iterable[str] | str) -> list[str]:
    """Strip, drop empties and de-duplicate names, keeping their order (a string is split on commas).

    :param items: names, or one comma-separated string of names.
    """
    values = items.split(",") if isinstance(items, str) else items
    return list(dict.fromkeys(str(item).strip() for item in values if item and str(item).strip()))


def _valid_name(name: str) -> bool:
    """Tell whether ``name`` can be passed to systemctl or podman as a name, never as an option.

    :param name: a unit or container name from the configuration.
    """
    return bool(name) and not name.startswith("-") and not any(c.isspace() or c == "\x00" for c in name)


# --------------------------------------------------------------------------------------------------
# resources
# --------------------------------------------------------------------------------------------------


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


def _measure(snapshot: ResourceSnapshot, errors: list[str], cpu_interval: float | None) -> None:
    """Fill ``snapshot`` field group by field group, noting each group that fails in ``errors``.

    :param snapshot: the snapshot to fill in place.
    :param errors: receives one entry per failed measurement.
    :param cpu_interval: passed to :func:`psutil.cpu_percent`.
    """

    def cpu() -> None:
        snapshot.cpu_percent = float(psutil.cpu_percent(interval=cpu_interval))
        snapshot.cpu_count = psutil.cpu_count()
        snapshot.load_average = [round(float(value), 2) for value in psutil.getloadavg()]

    def memory() -> None:
        virtual = psutil.virtual_memory()
        snapshot.memory_percent = float(virtual.percent)
        snapshot.memory_available_bytes = int(virtual.available)
        snapshot.swap_percent = float(psutil.swap_memory().percent)

    def files() -> None:
        snapshot.open_files, snapshot.open_files_limit = _open_files()

    def disks() -> None:
        snapshot.disks = _collect_disks()

    for name, step in (("cpu", cpu), ("memory", memory), ("open files", files), ("disks", disks)):
        try:
            step()
        except Exception as exc:
            errors.append(f"{name}: {_error_text(exc)}")


def collect_resources(cpu_interval: float | None = 0.1) -> ResourceSnapshot:
    """Take a psutil snapshot of CPU, memory, swap, load, file descriptors and disks; never raises.

    :param cpu_interval: seconds :func:`psutil.cpu_percent` samples over; ``None`` is non-blocking but
        compares with the previous call (the first call in a process then reports 0.0).
    """
    snapshot = ResourceSnapshot()
    errors: list[str] = []
    _measure(snapshot, errors, cpu_interval)
    state, reasons = resource_state(snapshot)
    snapshot.state = state
    snapshot.detail = "; ".join(reasons + errors)
    return snapshot


# --------------------------------------------------------------------------------------------------
# systemd
# --------------------------------------------------------------------------------------------------


def parse_systemctl_show(output: str) -> list[dict[str, str]]:
    """Split ``systemctl show`` output into one ``KEY=VALUE`` dict per unit.

    :param output: stdout of ``systemctl show`` for one or more units (blocks separated by blank lines).
    """
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in output.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _unit_id(name: str) -> str:
    """Return the full unit id systemd reports for ``name`` (``.service`` when no suffix is given).

    :param name: a unit name as configured.
    """
    return name if "." in name.rsplit("/", 1)[-1] else f"{name}.service"


def _as_int(value: str | None) -> int | None:
    """Parse an integer property, ``None`` when it is missing or not a number.

    :param value: the raw property value.
    """
    try:
        return int(value) if value not in (None, "", "[not set]") else None
    except ValueError:
        return None


def systemd_unit_health(name: str, props: Mapping[str, str]) -> ServiceHealth:
    """Map one unit's ``systemctl show`` properties to a :class:`ServiceHealth`.

    :param name: the unit name as requested.
    :param props: its properties (Id, LoadState, ActiveState, SubState, Result, NRestarts, ...).
    """
    load = props.get("LoadState", "")
    active = props.get("ActiveState", "")
    sub = props.get("SubState", "")
    restarts = _as_int(props.get("NRestarts")) or 0
    status = _as_int(props.get("ExecMainStatus"))
    result = props.get("Result", "")

    def health(state: Health, detail: str) -> ServiceHealth:
        return ServiceHealth(name=name, kind="systemd", state=state, detail=detail)

    if load == "not-found":
        return health(Health.DOWN, "not installed")
    if load in {"masked", "error", "bad-setting"}:
        return health(Health.DOWN, f"load state {load}")
    described = f"{active} ({sub})" if sub else active
    if restarts:
        described += f", restarted {restarts} time{'s' if restarts != 1 else ''}"
    if active == "failed":
        return health(Health.DOWN, f"{described}, result={result or '?'}, exit status={status}")
    if active == "inactive":
        return health(Health.DOWN, described)
    if active in _SYSTEMD_TRANSITIONAL:
        return health(Health.DEGRADED, described)
    if active == "active":
        return health(Health.DEGRADED if restarts else Health.HEALTHY, described)
    return health(Health.UNKNOWN, f"unrecognised state {described or 'missing'}")


def _match_blocks(units: Sequence[str], blocks: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """Pair requested units with output blocks, by ``Id`` first, then by position.

    :param units: the requested unit names.
    :param blocks: parsed ``systemctl show`` blocks.
    """
    by_id = {block.get("Id", ""): block for block in blocks}
    matched: dict[str, dict[str, str]] = {}
    for position, unit in enumerate(units):
        block = by_id.get(_unit_id(unit)) or by_id.get(unit)
        if block is None and len(blocks) == len(units):
            block = blocks[position]
        if block is not None:
            matched[unit] = block
    return matched


def collect_systemd(
    units: Iterable[str] | str, timeout: float | None = DEFAULT_TIMEOUT
) -> list[ServiceHealth]:
    """Probe systemd units with one ``systemctl show`` call; never raises.

    :param units: unit names (``.service`` is assumed when no suffix is given).
    :param timeout: seconds the ``systemctl`` call may take.
    """
    names = _clean(units)
    valid = [n for n in names if _valid_name(n)]
    invalid = {n: "invalid unit name" for n in names if not _valid_name(n)}
    if not valid:
        return [_unknown_service(n, "systemd", invalid[n]) for n in names]
    argv = ["systemctl", "show", "--no-pager", f"--property={_SYSTEMD_PROPERTIES}", "--", *valid]
    result = run_command(argv, _sane_timeout(timeout))
    blocks = parse_systemctl_show(result.stdout) if not result.error else []
    matched = _match_blocks(valid, blocks)
    reason = _systemd_failure_reason(result)
    services: list[ServiceHealth] = []
    for name in names:
        if name in invalid:
            services.append(_unknown_service(name, "systemd", invalid[name]))
        elif name in matched:
            services.append(systemd_unit_health(name, matched[name]))
        else:
            services.append(_unknown_service(name, "systemd", reason))
    return services


def _systemd_failure_reason(result: CommandResult) -> str:
    """Explain why a unit got no usable ``systemctl show`` block.

    :param result: the ``systemctl`` command result.
    """
    if result.error:
        return result.error
    stderr = result.stderr.lower()
    for marker in _SYSTEMD_UNAVAILABLE_MARKERS:
        if marker in stderr:
            return f"systemd unavailable: {_first_line(result.stderr)}"
    detail = _first_line(result.stderr) or "no output for this unit"
    return f"systemctl exited {result.returncode}: {detail}"


def _unknown_service(name: str, kind: str, detail: str) -> ServiceHealth:
    """Build an UNKNOWN :class:`ServiceHealth`.

    :param name: unit or container name.
    :param kind: ``systemd`` or ``podman``.
    :param detail: why the state is not known.
    """
    return ServiceHealth(name=name, kind=kind, state=Health.UNKNOWN, detail=detail)


# --------------------------------------------------------------------------------------------------
# podman
# --------------------------------------------------------------------------------------------------


def podman_container_health(name: str, record: Mapping[str, Any]) -> ServiceHealth:
    """Map one ``podman inspect`` record to a :class:`ServiceHealth`.

    :param name: the container name as requested.
    :param record: the container's inspect record.
    """
    raw_state = record.get("State")
    state: Mapping[str, Any] = raw_state if isinstance(raw_state, Mapping) else {}
    status = str(state.get("Status") or "").lower()
    running = bool(state.get("Running")) or status == "running"
    health_block = state.get("Health") or state.get("Healthcheck") or {}
    check = str(health_block.get("Status") or "").lower() if isinstance(health_block, Mapping) else ""
    exit_code = state.get("ExitCode")
    oom = bool(state.get("OOMKilled"))

    def health(value: Health, detail: str) -> ServiceHealth:
        return ServiceHealth(name=name, kind="podman", state=value, detail=detail)

    if running and check in {"unhealthy", "starting"}:
        return health(Health.DEGRADED, f"running, healthcheck {check}")
    if running and status in ("running", ""):
        return health(Health.HEALTHY, f"running{', healthcheck ' + check if check else ''}")
    if status in _PODMAN_DEGRADED_STATUSES:
        return health(Health.DEGRADED, status)
    if status in _PODMAN_DOWN_STATUSES or (status and not running):
        detail = f"{status}, exit code {exit_code}" + (", OOM killed" if oom else "")
        return health(Health.DOWN, detail)
    return health(Health.UNKNOWN, f"unrecognised state {status or 'missing'}")


def _index_records(records: list[Any]) -> dict[str, Mapping[str, Any]]:
    """Index inspect records by name and id.

    :param records: the decoded ``podman inspect`` array.
    """
    index: dict[str, Mapping[str, Any]] = {}
    for record in records:
        if not isinstance(record, Mapping):
            continue
        name = str(record.get("Name") or "").lstrip("/")
        if name:
            index[name] = record
        if record.get("Id"):
            index[str(record["Id"])] = record
    return index


def _find_record(name: str, index: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Find a container by name, full id or id prefix.

    :param name: the requested name or id.
    :param index: records by name and id.
    """
    if name in index:
        return index[name]
    for key, record in index.items():
        if len(name) >= 12 and key.startswith(name):
            return record
    return None


def _decode_inspect(stdout: str) -> list[Any] | None:
    """Decode ``podman inspect --format json`` output; ``None`` when it is not a JSON array.

    :param stdout: the command's stdout.
    """
    try:
        data = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        return None
    return data if isinstance(data, list) else None


def collect_podman(
    containers: Iterable[str] | str, timeout: float | None = DEFAULT_TIMEOUT
) -> list[ServiceHealth]:
    """Probe podman containers with one ``podman inspect`` call; never raises.

    :param containers: container names or ids.
    :param timeout: seconds the ``podman`` call may take.
    """
    names = _clean(containers)
    valid = [n for n in names if _valid_name(n)]
    if not valid:
        return [_unknown_service(n, "podman", "invalid container name") for n in names]
    argv = ["podman", "inspect", "--type", "container", "--format", "json", "--", *valid]
    result = run_command(argv, _sane_timeout(timeout))
    records = _decode_inspect(result.stdout) if not result.error else None
    index = _index_records(records or [])
    missing_known = records is not None or "no such" in result.stderr.lower()
    if result.error:
        reason = result.error
    else:
        reason = f"podman exited {result.returncode}: {_first_line(result.stderr) or 'unreadable output'}"
    services: list[ServiceHealth] = []
    for name in names:
        record = _find_record(name, index) if name in valid else None
        if name not in valid:
            services.append(_unknown_service(name, "podman", "invalid container name"))
        elif record is not None:
            services.append(podman_container_health(name, record))
        elif missing_known:
            services.append(
                ServiceHealth(name=name, kind="podman", state=Health.DOWN, detail="no such container")
            )
        else:
            services.append(_unknown_service(name, "podman", reason))
    return services


# --------------------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------------------


def parse_target(target: str) -> tuple[str, int]:
    """Split ``host:port`` or ``[ipv6]:port`` into host and port.

    :param target: the configured target.
    :raises ValueError: when the target is malformed.
    """
    text = target.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"malformed target {target!r}: expected [ipv6]:port")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            raise ValueError(f"malformed target {target!r}: expected host:port")
        if ":" in host:
            raise ValueError(f"malformed target {target!r}: put IPv6 addresses in brackets, [addr]:port")
    if not host or any(c.isspace() for c in host):
        raise ValueError(f"malformed target {target!r}: empty or invalid host")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"malformed target {target!r}: port must be 1-65535")
    return host, int(port_text)


def probe_target(target: str, timeout: float | None = DEFAULT_TIMEOUT) -> Reachability:
    """Open (and close) one TCP connection to ``target``; never raises.

    :param target: ``host:port`` or ``[ipv6]:port``.
    :param timeout: connect timeout in seconds.
    """
    try:
        host, port = parse_target(target)
    except ValueError as exc:
        return Reachability(target=target, host="", port=0, state=Health.UNKNOWN, error=str(exc))
    seconds = _sane_timeout(timeout)
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=seconds):
            elapsed = (time.perf_counter() - started) * 1000.0
    except TimeoutError:
        error = f"timed out after {seconds:g}s"
    except socket.gaierror as exc:
        error = f"name resolution failed: {exc.strerror or exc}"
    except OSError as exc:
        error = _error_text(exc)
    else:
        return Reachability(
            target=target, host=host, port=port, state=Health.HEALTHY, latency_ms=round(elapsed, 3)
        )
    return Reachability(target=target, host=host, port=port, state=Health.DOWN, error=error)


def _unfinished_target(target: str, status: str, timeout: float) -> Reachability:
    """Describe a target whose probe did not report back in time.

    :param target: the configured target.
    :param status: the :func:`run_bounded` status of its probe.
    :param timeout: the probe timeout.
    """
    try:
        host, port = parse_target(target)
    except ValueError as exc:
        return Reachability(target=target, host="", port=0, state=Health.UNKNOWN, error=str(exc))
    if status == "running":
        return Reachability(
            target=target,
            host=host,
            port=port,
            state=Health.DOWN,
            error=f"timed out after {timeout:g}s (name resolution or connect)",
        )
    error = status.removeprefix("error:") if status.startswith("error:") else "not probed before the deadline"
    return Reachability(target=target, host=host, port=port, state=Health.UNKNOWN, error=error)


def check_reachability(
    targets: Iterable[str] | str, timeout: float | None = DEFAULT_TIMEOUT
) -> list[Reachability]:
    """Probe TCP targets concurrently so the whole check takes about one ``timeout``; never raises.

    :param targets: ``host:port`` / ``[ipv6]:port`` strings.
    :param timeout: per-connection timeout in seconds.
    """
    items = targets.split(",") if isinstance(targets, str) else targets
    wanted = [t.strip() for t in items if t and t.strip()]
    seconds = _sane_timeout(timeout)
    calls = [(lambda t=t: probe_target(t, seconds)) for t in wanted]
    outcomes = run_bounded(calls, seconds + 0.5)
    return [
        value if status == "done" and value is not None else _unfinished_target(target, status, seconds)
        for target, (status, value) in zip(wanted, outcomes, strict=True)
    ]


# --------------------------------------------------------------------------------------------------
# dependency map
# --------------------------------------------------------------------------------------------------


def _service_key(name: str) -> str:
    """Normalise a service name for dependency look-ups (``.service`` is optional).

    :param name: a unit, container or tool name.
    """
    return name.strip().removesuffix(".service")


def normalize_dependency_map(raw: Any) -> tuple[dict[str, list[str]], list[str]]:
    """Validate a dependency map: an object of service -> list of dependents.

    :param raw: decoded JSON (or a dict given in code); ``None`` means an empty map.
    :return: the usable map and one error text per entry that was dropped.
    """
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, [f"dependency_map must be a JSON object, got {type(raw).__name__}"]
    result: dict[str, list[str]] = {}
    errors: list[str] = []
    for key, value in raw.items():
        items = [value] if isinstance(value, str) else value
        if not isinstance(key, str) or not isinstance(items, list | tuple):
            errors.append(f"dependency_map entry {key!r} must map a name to a list of names")
            continue
        result[key] = [str(item) for item in items if isinstance(item, str | int) and str(item).strip()]
    return result, errors


def dependents_of(service: str, dependency_map: Mapping[str, Iterable[str]]) -> list[str]:
    """Return everything that depends on ``service``, directly or transitively, in breadth-first order.

    Names match with or without a ``.service`` suffix; cycles are harmless and ``service`` itself is
    never part of the answer.

    :param service: the service whose dependents are wanted.
    :param dependency_map: service -> names that depend on it.
    """
    graph: dict[str, list[str]] = {}
    for key, values in dependency_map.items():
        graph.setdefault(_service_key(key), []).extend(values)
    start = _service_key(service)
    seen = {start}
    found: list[str] = []
    queue: deque[str] = deque([start])
    while queue:
        for dependent in graph.get(queue.popleft(), []):
            key = _service_key(dependent)
            if key in seen:
                continue
            seen.add(key)
            found.append(dependent)
            queue.append(key)
    return found


# --------------------------------------------------------------------------------------------------
# the collector
# --------------------------------------------------------------------------------------------------


def _config_value(getter: Callable[[str], T], option: str, fallback: T, errors: list[str]) -> T:
    """Read one option, noting a bad value in ``errors`` and falling back.

    :param getter: a :mod:`config` getter (``get_list``, ``get_float``, ...).
    :param option: the option name.
    :param fallback: the value used when the option cannot be read.
    :param errors: receives the reason when it cannot.
    """
    try:
        return getter(option)
    except Exception as exc:
        errors.append(f"config {option}: {exc}")
        return fallback


def _names(given: Iterable[str] | str | None, option: str, errors: list[str]) -> list[str]:
    """Return a list of names from an argument, or from the comma-separated ``option`` when it is None.

    :param given: names, a comma-separated string, or ``None`` for the configured value.
    :param option: the configuration option to fall back on.
    :param errors: receives the reason when the option cannot be read.
    """
    if given is None:
        return _config_value(config.get_list, option, [], errors)
    if isinstance(given, str):
        return [item.strip() for item in given.split(",") if item.strip()]
    return [str(item) for item in given]


class ContextCollector:
    """Build a :class:`DiagnosticContext` from concurrent, individually bounded probes.

    Every argument left as ``None`` is read from the ``[qubinode_recovery]`` configuration. An
    unreadable option becomes a ``probe_errors`` entry, never an exception.

    :param systemd_units: units to probe.
    :param podman_containers: containers to probe.
    :param reachability_targets: ``host:port`` targets to probe.
    :param dependency_map: service -> dependents (a JSON string is accepted too).
    :param timeout: per-probe timeout in seconds (at most ``deadline``).
    :param deadline: overall budget in seconds (default: twice the timeout plus one second).
    :param cpu_interval: CPU sampling interval passed to :func:`collect_resources`.
    """

    def __init__(
        self,
        *,
        systemd_units: Iterable[str] | str | None = None,
        podman_containers: Iterable[str] | str | None = None,
        reachability_targets: Iterable[str] | str | None = None,
        dependency_map: Mapping[str, Iterable[str]] | str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        cpu_interval: float | None = 0.1,
    ) -> None:
        self.config_errors: list[str] = []
        errors = self.config_errors
        self.systemd_units = _names(systemd_units, "systemd_units", errors)
        self.podman_containers = _names(podman_containers, "podman_containers", errors)
        self.reachability_targets = _names(reachability_targets, "reachability_targets", errors)
        if timeout is None:
            timeout = _config_value(config.get_float, "probe_timeout_seconds", DEFAULT_TIMEOUT, errors)
        self.timeout = _sane_timeout(timeout)
        self.deadline = _sane_timeout(deadline) if deadline is not None else self.timeout * 2 + 1.0
        # a probe outliving the overall deadline would be abandoned, its command still running: no
        # probe may take longer than the whole collection
        self.timeout = min(self.timeout, self.deadline)
        self.cpu_interval = cpu_interval
        self.dependency_map = self._load_dependency_map(dependency_map)

    def _load_dependency_map(self, given: Mapping[str, Iterable[str]] | str | None) -> dict[str, list[str]]:
        """Resolve the dependency map from the argument or the configuration.

        :param given: the constructor argument.
        """
        raw: Any
        if given is None:
            raw = _config_value(config.get_json, "dependency_map", None, self.config_errors)
        elif isinstance(given, str):
            try:
                raw = json.loads(given) if given.strip() else None
            except ValueError as exc:
                self.config_errors.append(f"dependency_map is not valid JSON: {exc}")
                raw = None
        else:
            raw = {key: list(values) for key, values in given.items()}
        mapping, errors = normalize_dependency_map(raw)
        self.config_errors.extend(errors)
        return mapping

    def collect(self, log_lines: Iterable[str] | None = None) -> DiagnosticContext:
        """Run every probe concurrently within the deadline and assemble the context; never raises.

        :param log_lines: lines of the failed attempt's log to carry along.
        """
        context = DiagnosticContext(
            host=_hostname(),
            dependency_map=self.dependency_map,
            probe_errors=list(self.config_errors),
            log_lines=[str(line) for line in log_lines] if log_lines is not None else [],
        )
        probes: list[tuple[str, Callable[[], Any]]] = [
            ("resources", lambda: collect_resources(self.cpu_interval)),
        ]
        if self.systemd_units:
            probes.append(("systemd", lambda: collect_systemd(self.systemd_units, self.timeout)))
        if self.podman_containers:
            probes.append(("podman", lambda: collect_podman(self.podman_containers, self.timeout)))
        if self.reachability_targets:
            probes.append(("network", lambda: check_reachability(self.reachability_targets, self.timeout)))
        outcomes = run_bounded([call for _, call in probes], self.deadline)
        for (name, _), (status, value) in zip(probes, outcomes, strict=True):
            self._store(context, name, status, value)
        return context

    def _store(self, context: DiagnosticContext, name: str, status: str, value: Any) -> None:
        """Put one probe's result into ``context``, or UNKNOWN entries when it failed.

        :param context: the context being built.
        :param name: ``resources``, ``systemd``, ``podman`` or ``network``.
        :param status: the :func:`run_bounded` status.
        :param value: the probe's result when ``status`` is ``done``.
        """
        if status == "done":
            reason = ""
        elif status.startswith("error:"):
            reason = f"{name} probe failed: {status.removeprefix('error:')}"
        else:
            reason = f"{name} probe did not finish within {self.deadline:g}s"
        if reason:
            context.probe_errors.append(reason)
        result = value if not reason else self._unknown_entry(name, reason)
        if name == "resources":
            context.resources = result
        elif name == "network":
            context.network = result
        else:
            context.services += result

    def _unknown_entry(self, name: str, reason: str) -> Any:
        """Return the UNKNOWN stand-in for a probe that failed or missed the deadline.

        :param name: ``resources``, ``systemd``, ``podman`` or ``network``.
        :param reason: why the probe has no result.
        """
        if name == "resources":
            return ResourceSnapshot(detail=reason)
        if name == "network":
            return [_unfinished_target(t, "error:" + reason, self.timeout) for t in self.reachability_targets]
        names = self.systemd_units if name == "systemd" else self.podman_containers
        return [_unknown_service(n, name, reason) for n in names]

    def dependents_of(self, service: str) -> list[str]:
        """Return what depends on ``service`` according to this collector's dependency map.

        :param service: the service whose dependents are wanted.
        """
        return dependents_of(service, self.dependency_map)


def _hostname() -> str | None:
    """Return this machine's host name, ``None`` if it cannot be read."""
    try:
        return socket.gethostname() or None
    except OSError:
        return None


def collect_context(
    *,
    systemd_units: Iterable[str] | str | None = None,
    podman_containers: Iterable[str] | str | None = None,
    reachability_targets: Iterable[str] | str | None = None,
    dependency_map: Mapping[str, Iterable[str]] | str | None = None,
    timeout: float | None = None,
    deadline: float | None = None,
    log_lines: Iterable[str] | None = None,
) -> DiagnosticContext:
    """Collect a :class:`DiagnosticContext` in one call (see :class:`ContextCollector`); never raises.

    :param systemd_units: units to probe (default: the ``systemd_units`` option).
    :param podman_containers: containers to probe (default: the ``podman_containers`` option).
    :param reachability_targets: targets to probe (default: the ``reachability_targets`` option).
    :param dependency_map: service -> dependents (default: the ``dependency_map`` option).
    :param timeout: per-probe timeout (default: the ``probe_timeout_seconds`` option).
    :param deadline: overall budget in seconds.
    :param log_lines: lines of the failed attempt's log to carry along.
    """
    lines: list[str] = []
    try:
        lines = [str(line) for line in log_lines] if log_lines is not None else []
        collector = ContextCollector(
            systemd_units=systemd_units,
            podman_containers=podman_containers,
            reachability_targets=reachability_targets,
            dependency_map=dependency_map,
            timeout=timeout,
            deadline=deadline,
        )
        return collector.collect(lines)
    except Exception as exc:  # last line of defence: a context must always come back
        return DiagnosticContext(
            host=_hostname(),
            log_lines=lines,
            probe_errors=[f"context collection failed: {_error_text(exc)}"],
        )
