"""The one launcher for every process the tests (and ``scripts/local_airflow.py``) start.

Every process is bounded and its whole tree is reaped, pass or fail:

- it starts in a session of its own (``start_new_session=True``), with stdin from ``/dev/null`` and
  output to a file (no pipe a chatty child could fill);
- its environment carries the test session's mark (:data:`SESSION_VAR`, set by the root conftest)
  and a token of its own (:data:`LAUNCH_VAR`). Airflow puts each task in a process group of its own
  and ``bash`` tasks in a session of their own, so a process group does not hold a whole Airflow
  tree; the token does (environments are inherited), and it still finds a process whose parent died;
- :func:`run` waits at most ``timeout`` seconds; :class:`Service` (a long-running process) has a
  bounded :meth:`Service.stop`. Both end with :func:`kill_tree`: SIGTERM to the leader's descendants,
  its process group and every process with its token, SIGKILL to what is left after the grace period.

    result = run([AIRFLOW, "db", "migrate"], timeout=240, env=env, stderr_to_stdout=True)
    server = Service.start([AIRFLOW, "api-server"], name="api-server", log_path=home / "api.log")
    try:
        ...
    finally:
        server.stop()
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, ClassVar

import psutil

SESSION_VAR = "QUBINODE_TEST_SESSION"
LAUNCH_VAR = "QUBINODE_TEST_LAUNCH"
DEFAULT_GRACE = 10.0
TAIL_CHARS = 6000


class ProcessTimeout(subprocess.TimeoutExpired):
    """A process ran past its timeout; it and its whole tree were killed.

    :param argv: the command
    :param timeout: the bound, in seconds
    :param output: what the process wrote before it was killed
    """

    def __init__(self, argv: Sequence[str], timeout: float, output: str) -> None:
        super().__init__(list(argv), timeout, output=output)

    def __str__(self) -> str:
        tail = (self.output or "")[-TAIL_CHARS:]
        command = " ".join(map(str, self.cmd))
        return f"{command!r} ran past its {self.timeout:g}s bound and was killed:\n{tail}"


class Completed(subprocess.CompletedProcess[str]):
    """The result of :func:`run`: a ``CompletedProcess`` plus why the launcher stopped it, if it did.

    :param stopped: ``None`` when the process exited by itself; otherwise the reason it was stopped
        after ``finished`` said its work was done
    :param elapsed: seconds from start to exit
    """

    def __init__(
        self,
        args: Sequence[str],
        returncode: int,
        stdout: str,
        stderr: str,
        stopped: str | None,
        elapsed: float,
    ) -> None:
        super().__init__(list(args), returncode, stdout, stderr)
        self.stopped = stopped
        self.elapsed = elapsed


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mark_session() -> str:
    """Give this process (and so every process it starts) a new test session mark; return it.

    A new one even when a mark was inherited: a pytest run by a test has its own session, and must
    not take the processes of the outer one for its own.
    """
    os.environ[SESSION_VAR] = uuid.uuid4().hex
    return os.environ[SESSION_VAR]


def child_env(env: Mapping[str, str] | None = None) -> tuple[dict[str, str], str]:
    """The environment for a new process: ``env`` (default: this one's) plus the session mark and a
    fresh launch token; returns ``(environment, token)``.

    :param env: the environment the caller built
    """
    token = uuid.uuid4().hex
    result = dict(os.environ if env is None else env)
    if SESSION_VAR in os.environ:
        result[SESSION_VAR] = os.environ[SESSION_VAR]
    result[LAUNCH_VAR] = token
    return result, token


def processes_with(variable: str, value: str) -> list[psutil.Process]:
    """Every live process (but this one) whose environment holds ``variable=value``.

    :param variable: an environment variable name
    :param value: its exact value
    """
    entry = f"{variable}={value}".encode()
    found = []
    for pid in psutil.pids():
        if pid == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/environ", "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        if entry in data.split(b"\0"):
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(pid))
    return found


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for pid in psutil.pids():
        with contextlib.suppress(OSError, psutil.Error):
            if pid != os.getpid() and os.getpgid(pid) == pgid:
                members.append(psutil.Process(pid))
    return members


def _descendants(pid: int) -> list[psutil.Process]:
    try:
        leader = psutil.Process(pid)
        return [leader, *leader.children(recursive=True)]
    except psutil.Error:
        return []


def tree_of(leader: int | None, token: str | None) -> list[psutil.Process]:
    """The live processes of one launch: the leader, its descendants, its process group (a session
    leader's pid is its group id) and every process carrying ``token``.

    :param leader: the pid the launcher started (``None``: only the token)
    :param token: the launch token (``None``: only the leader's tree)
    """
    found: dict[int, psutil.Process] = {}
    candidates: list[psutil.Process] = []
    if leader is not None:
        candidates += _descendants(leader) + _group_members(leader)
    if token is not None:
        candidates += processes_with(LAUNCH_VAR, token)
    for process in candidates:
        with contextlib.suppress(psutil.Error):
            if process.pid != os.getpid() and process.status() != psutil.STATUS_ZOMBIE:
                found[process.pid] = process
    return list(found.values())


def terminate(
    processes: Iterable[psutil.Process],
    grace: float = DEFAULT_GRACE,
    leaders: Iterable[subprocess.Popen[bytes]] = (),
) -> list[str]:
    """SIGTERM ``processes`` and ``leaders``, SIGKILL those alive after ``grace`` seconds; describe the
    ones that needed SIGKILL.

    :param processes: the processes to end
    :param grace: seconds between SIGTERM and SIGKILL
    :param leaders: processes this one started, ended and reaped through ``Popen`` (which keeps their
        exit codes; psutil would reap them behind ``Popen``'s back)
    """
    victims, owned = list(processes), [p for p in leaders if p.poll() is None]
    for popen in owned:
        with contextlib.suppress(ProcessLookupError):
            popen.send_signal(signal.SIGTERM)
    for process in victims:
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    _, alive = psutil.wait_procs(victims, timeout=grace)
    killed = []
    for popen in owned:
        try:
            popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            command = popen.args if isinstance(popen.args, list | tuple) else [popen.args]
            killed.append(f"pid={popen.pid}: {' '.join(map(str, command))[:300]}")
            popen.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                popen.wait(timeout=5)
    for process in alive:
        killed.append(describe(process))
        with contextlib.suppress(psutil.Error):
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(alive, timeout=5)
    return killed


def kill_tree(
    leader: subprocess.Popen[bytes] | int | None,
    token: str | None,
    grace: float = DEFAULT_GRACE,
) -> list[str]:
    """End every process of one launch (see :func:`tree_of`); describe the ones that needed SIGKILL.

    :param leader: the process the launcher started (a ``Popen`` keeps its exit code), or its pid
    :param token: the launch token
    :param grace: seconds between SIGTERM and SIGKILL
    """
    popen = leader if isinstance(leader, subprocess.Popen) else None
    pid = leader.pid if isinstance(leader, subprocess.Popen) else leader

    def others() -> list[psutil.Process]:
        return [p for p in tree_of(pid, token) if popen is None or p.pid != popen.pid]

    killed = terminate(others(), grace, [popen] if popen is not None else [])
    # a process may have forked while the first round was being signalled
    return killed + terminate(others(), 1.0)


def describe(process: psutil.Process) -> str:
    """``pid``, parent, state, age and command line of a process, for a report.

    :param process: the process
    """
    try:
        with process.oneshot():
            command = " ".join(process.cmdline()) or process.name()
            age = time.time() - process.create_time()
            return f"pid={process.pid} ppid={process.ppid()} {process.status()} {age:.0f}s: {command[:300]}"
    except psutil.Error:
        return f"pid={process.pid} (gone)"


def read_from(path: Path, offset: int) -> tuple[str, int]:
    """What ``path`` holds after ``offset`` (nothing when it cannot be read), and the offset after it."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            data = handle.read()
    except OSError:
        return "", offset
    return data.decode("utf-8", "replace"), offset + len(data)


def _wait(
    process: subprocess.Popen[bytes],
    out_path: Path,
    timeout: float,
    finished: Callable[[str], bool] | None,
    linger: float,
) -> tuple[str, str | None]:
    """Wait for ``process``: its output so far, and why it was stopped (``timeout`` or ``finished``)."""
    if finished is None:  # nothing to watch: block until it exits or the bound
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return read_from(out_path, 0)[0], "timeout"
        return read_from(out_path, 0)[0], None
    deadline = time.monotonic() + timeout
    output, offset = "", 0
    linger_until: float | None = None
    while True:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.2)
        chunk, offset = read_from(out_path, offset)
        output += chunk
        now = time.monotonic()
        if process.returncode is not None:
            return output, None
        if now >= deadline:
            return output, "timeout"
        if finished is not None and linger_until is None and finished(output):
            linger_until = now + linger
        if linger_until is not None and now >= linger_until:
            return output, "finished"


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    input: str | None = None,
    stderr_to_stdout: bool = False,
    check: bool = False,
    finished: Callable[[str], bool] | None = None,
    linger: float = 10.0,
    grace: float = DEFAULT_GRACE,
    keep_daemons: bool = False,
) -> Completed:
    """Run a command to completion, bounded: raise :class:`ProcessTimeout` after ``timeout`` seconds.

    Its whole tree is reaped afterwards whatever happened (a daemon it left behind is killed too).

    :param argv: the command; never a shell string
    :param timeout: the bound, in seconds, on the whole run
    :param env: its environment (default: this process's), plus the marks of :func:`child_env`
    :param cwd: its working directory
    :param input: text for its stdin (default: ``/dev/null``)
    :param stderr_to_stdout: merge stderr into ``stdout`` (``stderr`` is then empty)
    :param check: raise ``CalledProcessError`` on a non-zero exit
    :param finished: called with the output so far; once it returns true the process gets
        ``linger`` more seconds to exit by itself, then it is stopped (``Completed.stopped``)
    :param linger: see ``finished``
    :param grace: seconds between SIGTERM and SIGKILL when the tree is ended
    :param keep_daemons: leave alone what the command started and left running when it exited by
        itself (``pg_ctl start`` and its server); a command that times out is still reaped whole
    """
    full_env, token = child_env(env)
    workdir = Path(tempfile.mkdtemp(prefix="qrp-run-"))
    out_path, err_path = workdir / "stdout", workdir / "stderr"
    start = time.monotonic()
    process: subprocess.Popen[bytes] | None = None
    try:
        with open(out_path, "ab") as out, open(err_path, "ab") as err:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT if stderr_to_stdout else err,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
        _feed(process.stdin, input)
        output, stopped = _wait(process, out_path, timeout, finished, linger)
    finally:
        if process is not None:
            if not (keep_daemons and process.returncode is not None):
                kill_tree(process, token, grace)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
    errors, _ = read_from(err_path, 0)
    shutil.rmtree(workdir, ignore_errors=True)
    if stopped == "timeout":
        raise ProcessTimeout(argv, timeout, output + errors)
    reason = f"stopped {linger:g}s after its work was done" if stopped else None
    result = Completed(argv, process.returncode, output, errors, reason, time.monotonic() - start)
    if check and result.returncode != 0 and reason is None:
        raise subprocess.CalledProcessError(result.returncode, list(argv), output, errors)
    return result


def _feed(stdin: IO[bytes] | None, text: str | None) -> None:
    if stdin is None:
        return
    with contextlib.suppress(BrokenPipeError):
        stdin.write((text or "").encode())
    with contextlib.suppress(BrokenPipeError):
        stdin.close()


class Service:
    """A long-running process (a server, an Airflow component) in a session of its own.

    Running services are registered, so the leak checks know them and :func:`stop_all` can end them.

    :param name: a short name for reports
    :param argv: the command
    :param process: the started process
    :param token: its launch token
    :param log_path: the file its stdout and stderr go to
    :param shared: shared by the tests of the session (a session fixture stops it at the end)
    """

    running: ClassVar[dict[int, Service]] = {}

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        process: subprocess.Popen[bytes] | psutil.Process,
        token: str | None,
        log_path: Path | None,
        shared: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.process = process
        self.token = token
        self.log_path = log_path
        self.shared = shared

    @classmethod
    def start(
        cls,
        argv: Sequence[str],
        *,
        name: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        shared: bool = False,
    ) -> Service:
        """Start ``argv`` with its output appended to ``log_path``.

        :param argv: the command; never a shell string
        :param name: a short name for reports
        :param log_path: the file for its stdout and stderr
        :param env: its environment (default: this process's), plus the marks of :func:`child_env`
        :param cwd: its working directory
        :param shared: shared by the tests of the session (a session fixture stops it at the end)
        """
        full_env, token = child_env(env)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
        service = cls(name, argv, process, token, log_path, shared)
        cls.running[process.pid] = service
        return service

    @classmethod
    def adopt(cls, pid: int, *, name: str, shared: bool = False) -> Service:
        """Register a daemon another command started (a PostgreSQL server ``pg_ctl`` started), so
        the leak checks count it and its children as a service; :meth:`forget` it once it is stopped.

        :param pid: the daemon's pid
        :param name: a short name for reports
        :param shared: shared by the tests of the session
        """
        process = psutil.Process(pid)
        service = cls(name, process.cmdline(), process, None, None, shared)
        cls.running[pid] = service
        return service

    def forget(self) -> None:
        """Unregister it (it was stopped some other way)."""
        Service.running.pop(self.pid, None)

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        """The exit code, ``None`` while it runs (``-1`` for an adopted daemon that is gone)."""
        if isinstance(self.process, psutil.Process):
            try:
                alive = self.process.is_running() and self.process.status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                alive = False
            return None if alive else -1
        return self.process.poll()

    def processes(self) -> list[psutil.Process]:
        """Its live processes (see :func:`tree_of`)."""
        return tree_of(self.pid, self.token)

    def stop(self, grace: float = DEFAULT_GRACE) -> list[str]:
        """End it and its whole tree (SIGTERM, SIGKILL after ``grace``); describe what needed SIGKILL.

        :param grace: seconds between SIGTERM and SIGKILL
        """
        return stop_services([self], grace)

    def log_tail(self, lines: int = 40) -> str:
        """The end of its log.

        :param lines: how many lines
        """
        if self.log_path is None:
            return ""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def stop_services(services: Iterable[Service], grace: float = DEFAULT_GRACE) -> list[str]:
    """End services and their whole trees together: SIGTERM to all, SIGKILL to what is left after
    ``grace`` seconds; describe what needed SIGKILL.

    :param services: the services
    :param grace: seconds between SIGTERM and SIGKILL
    """
    services = list(services)
    owned = [s.process for s in services if isinstance(s.process, subprocess.Popen)]
    spared = {p.pid for p in owned}

    def others() -> list[psutil.Process]:
        found = {p.pid: p for s in services for p in s.processes() if p.pid not in spared}
        return list(found.values())

    try:
        killed = terminate(others(), grace, owned)
        return killed + terminate(others(), 1.0)
    finally:
        for service in services:
            Service.running.pop(service.pid, None)


def stop_all(shared_only: bool = False, grace: float = DEFAULT_GRACE) -> list[str]:
    """Stop every running :class:`Service` (or only the shared ones); name the ones stopped.

    :param shared_only: stop only the services shared by the session
    :param grace: seconds between SIGTERM and SIGKILL
    """
    services = [s for s in Service.running.values() if s.shared or not shared_only]
    names = [f"{s.name} (pid {s.pid}): {' '.join(s.argv)[:200]}" for s in services]
    stop_services(services, grace)
    return names
