"""Running a probe: a bounded pool of daemon threads, a bounded subprocess, and the helpers every probe
shares (timeouts, error texts, name validation, UNKNOWN service entries).

Nothing here raises on a probe failure: a diagnosis must never be lost because the context around it
could not be gathered.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from qubinode_recovery_provider.categories import Health

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import ServiceHealth

T = TypeVar("T")

DEFAULT_TIMEOUT = 2.0
MIN_TIMEOUT = 0.05
MAX_PROBE_THREADS = 16


def sane_timeout(timeout: float | None) -> float:
    """Return a usable probe timeout: positive, finite, at least :data:`MIN_TIMEOUT`.

    :param timeout: the requested timeout in seconds; ``None`` or nonsense gives the default.
    """
    if timeout is None or not isinstance(timeout, int | float) or not math.isfinite(timeout):
        return DEFAULT_TIMEOUT
    return max(float(timeout), MIN_TIMEOUT)


def error_text(exc: BaseException) -> str:
    """Render an exception as ``Type: message`` for a ``detail`` or ``error`` field.

    :param exc: the exception to render.
    """
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def first_line(text: str) -> str:
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
                outcome = (f"error:{error_text(exc)}", None)
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
        return CommandResult(error=f"{argv[0]} could not run: {error_text(exc)}")
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


def clean_names(items: Iterable[str] | str) -> list[str]:
    """Strip, drop empties and de-duplicate names, keeping their order (a string is split on commas).

    :param items: names, or one comma-separated string of names.
    """
    values = items.split(",") if isinstance(items, str) else items
    return list(dict.fromkeys(str(item).strip() for item in values if item and str(item).strip()))


def valid_name(name: str) -> bool:
    """Tell whether ``name`` can be passed to systemctl or podman as a name, never as an option.

    :param name: a unit or container name from the configuration.
    """
    return bool(name) and not name.startswith("-") and not any(c.isspace() or c == "\x00" for c in name)


def unknown_service(name: str, kind: str, detail: str) -> ServiceHealth:
    """Build an UNKNOWN :class:`ServiceHealth`.

    :param name: unit or container name.
    :param kind: ``systemd`` or ``podman``.
    :param detail: why the state is not known.
    """
    from qubinode_recovery_provider.models import ServiceHealth  # built after the probe

    return ServiceHealth(name=name, kind=kind, state=Health.UNKNOWN, detail=detail)
