"""Run the installed ``qubinode-recovery`` command as a child process: bounded by a timeout, in its own
session, its whole tree reaped afterwards (pass or fail), its own peak RSS measured.

This is the one place the tests start a process without :func:`support.processes.run`, on purpose:
it streams stdin through a pipe chunk by chunk as the child reads it (64 MiB in
``test_cli_streaming.py``, never held whole by the test) and measures the child's own peak RSS with
``wait4``, neither of which ``run`` does. It still follows the launcher's rules: the session mark and a
launch token of its own (:func:`support.processes.child_env`), its own session, a watchdog for the
bound, and :func:`support.processes.kill_tree` afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from support import processes

EXE = Path(sys.executable).with_name("qubinode-recovery")


@dataclass
class Result:
    """What the child did.

    :param code: its exit code (negative: killed by that signal).
    :param out: its stdout.
    :param err: its stderr.
    :param max_rss_bytes: its peak resident set size (``wait4`` rusage of that one child).
    """

    code: int
    out: str
    err: str
    max_rss_bytes: int


def run_cli(
    argv: Sequence[str],
    *,
    stdin_chunks: Iterable[bytes] = (),
    timeout: float = 120.0,
    env: dict[str, str] | None = None,
) -> Result:
    """Run ``qubinode-recovery argv``, feeding ``stdin_chunks`` through a pipe as the child reads them.

    :param argv: the arguments.
    :param stdin_chunks: stdin, streamed chunk by chunk (never held whole by the test).
    :param timeout: seconds after which the whole process group is killed.
    :param env: the environment (default: this one), plus the marks of
        :func:`support.processes.child_env`.
    """
    full_env, token = processes.child_env(env)
    proc = subprocess.Popen(  # not processes.run: see the module docstring
        [str(EXE), *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env=full_env,
    )
    out: list[bytes] = []
    err: list[bytes] = []
    watchdog = threading.Timer(timeout, _kill_group, args=(proc.pid,))
    threads = [
        threading.Thread(target=_feed, args=(proc, stdin_chunks), daemon=True),
        threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True),  # type: ignore[union-attr]
        threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True),  # type: ignore[union-attr]
    ]
    try:
        watchdog.start()
        for thread in threads:
            thread.start()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        for thread in threads:
            thread.join(timeout)
    finally:
        watchdog.cancel()
        _kill_group(proc.pid)
        processes.kill_tree(proc, token, grace=5)  # what left the group, found by the launch token
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return Result(
        code=proc.returncode,
        out=b"".join(out).decode("utf-8", errors="replace"),
        err=b"".join(err).decode("utf-8", errors="replace"),
        max_rss_bytes=usage.ru_maxrss * 1024,
    )


def _feed(proc: subprocess.Popen[bytes], chunks: Iterable[bytes]) -> None:
    assert proc.stdin is not None
    try:
        for chunk in chunks:
            proc.stdin.write(chunk)
        proc.stdin.close()
    except (BrokenPipeError, ValueError, OSError):
        pass  # the child stopped reading (for instance after rejecting its input)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
