"""Leak checks: no thread and no process may outlive the test that started it.

The root conftest takes a :func:`snapshot` before each test and calls :func:`leaked_threads` and
:func:`leaked_processes` after it (fixtures included); at the end of the session it calls
:func:`session_leftovers`. A process counts as the test's when it is a descendant of the pytest
process or carries the session's mark in its environment (:data:`support.processes.SESSION_VAR`) --
the mark finds a process whose parent died and which was adopted by init, the way an orphaned
``airflow worker -- LocalExecutor`` escapes a process-tree walk.

Not leaks: running :class:`support.processes.Service` processes (shared servers that session
fixtures stop), zombies, and the two helper processes of :mod:`multiprocessing` (the fork server and
the resource tracker), which live until the pytest process exits by design.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from support.processes import SESSION_VAR, Service, describe, processes_with

#: Command-line fragments of the multiprocessing helpers, which end with the interpreter.
MULTIPROCESSING_HELPERS = (
    "from multiprocessing.forkserver import main",
    "from multiprocessing.resource_tracker import main",
)


@dataclass(frozen=True)
class Snapshot:
    """The threads and test processes alive at one moment.

    :param threads: the live threads
    :param processes: ``(pid, create_time)`` of every test process
    """

    threads: frozenset[threading.Thread]
    processes: frozenset[tuple[int, float]]


def _key(process: psutil.Process) -> tuple[int, float] | None:
    try:
        return process.pid, process.create_time()
    except psutil.Error:
        return None


def session_processes() -> list[psutil.Process]:
    """Live processes started by this test session: descendants of this process and processes with
    the session's mark, without zombies, multiprocessing helpers and running services."""
    candidates = list(psutil.Process().children(recursive=True))
    mark = os.environ.get(SESSION_VAR)
    if mark:
        candidates += processes_with(SESSION_VAR, mark)
    services = _service_pids()
    found: dict[int, psutil.Process] = {}
    for process in candidates:
        if process.pid in services or process.pid in found:
            continue
        with contextlib.suppress(psutil.Error):
            if process.status() == psutil.STATUS_ZOMBIE or _is_helper(process):
                continue
            found[process.pid] = process
    return list(found.values())


def _is_helper(process: psutil.Process) -> bool:
    command = " ".join(process.cmdline())
    return any(fragment in command for fragment in MULTIPROCESSING_HELPERS)


def _service_pids() -> set[int]:
    pids: set[int] = set()
    for service in list(Service.running.values()):
        pids.update(p.pid for p in service.processes())
    return pids


def snapshot() -> Snapshot:
    """The threads and test processes alive now."""
    keys = {_key(p) for p in session_processes()}
    return Snapshot(frozenset(threading.enumerate()), frozenset(k for k in keys if k is not None))


def leaked_threads(before: Snapshot, grace: float) -> list[threading.Thread]:
    """Threads started since ``before`` that are still alive after up to ``grace`` seconds.

    :param before: the snapshot taken before the test
    :param grace: the longest wait for them to end, in seconds
    """
    new = [t for t in threading.enumerate() if t not in before.threads and t.is_alive()]
    deadline = time.monotonic() + grace
    for thread in new:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in new if t.is_alive()]


def leaked_processes(before: Snapshot, grace: float) -> list[psutil.Process]:
    """Test processes started since ``before`` that are still alive after up to ``grace`` seconds.

    :param before: the snapshot taken before the test
    :param grace: the longest wait for them to end, in seconds
    """
    new = [p for p in session_processes() if _key(p) not in before.processes]
    if not new:
        return []
    _, alive = psutil.wait_procs(new, timeout=grace)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def describe_thread(thread: threading.Thread) -> str:
    """Name, kind and the innermost frame of a thread, for a report.

    :param thread: the thread
    """
    frame = sys._current_frames().get(thread.ident or -1)
    where = ""
    if frame is not None:
        code = frame.f_code
        where = f" at {code.co_filename}:{frame.f_lineno} in {code.co_name}"
    kind = "daemon" if thread.daemon else "non-daemon"
    return f"{thread.name!r} ({kind}){where}"


def report(title: str, lines: Iterable[str]) -> str:
    """A titled, indented list.

    :param title: the heading
    :param lines: one line per item
    """
    return "\n".join([title, *(f"  - {line}" for line in lines)])


def session_leftovers() -> tuple[list[str], list[str]]:
    """At the end of the session: non-daemon threads other than the main one, and every test
    process still alive (services included: a session fixture should have stopped them)."""
    threads = [
        describe_thread(t)
        for t in threading.enumerate()
        if t is not threading.main_thread() and not t.daemon and t.is_alive()
    ]
    processes = [describe(p) for p in session_processes()]
    processes += [f"service {s.name}: {describe_pid(s.pid)}" for s in Service.running.values()]
    return threads, processes


def describe_pid(pid: int) -> str:
    """:func:`support.processes.describe` by pid.

    :param pid: the process id
    """
    try:
        return describe(psutil.Process(pid))
    except psutil.Error:
        return f"pid={pid} (gone)"
