"""The launcher of ``support.processes``: bounded runs, whole trees reaped (a daemon that left its
process group and session, a process that ignores SIGTERM), and a command that finishes its work but
never exits (the way ``airflow dags test --use-executor`` hangs in ``LocalExecutor.end()``)."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from support import processes

#: A child that starts a grandchild in a session of its own (out of the child's process group, the
#: way Airflow's task runner and ``bash`` tasks leave it), does ``SETUP``, writes both pids, then
#: does ``TAIL``.
SPAWNER = textwrap.dedent(
    """
    import os, signal, subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                  start_new_session=True)
    SETUP
    with open(sys.argv[1], "w") as f:
        f.write(f"{os.getpid()} {grandchild.pid}")
    print("work done", flush=True)
    TAIL
    """
)


def spawner(tail: str, setup: str = "pass") -> str:
    return SPAWNER.replace("SETUP", setup).replace("TAIL", tail)


def read_pids(path: Path) -> list[int]:
    for _ in range(200):
        if path.exists() and path.read_text().strip():
            return [int(p) for p in path.read_text().split()]
        time.sleep(0.05)
    raise AssertionError(f"{path} was never written")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_run_returns_the_output_and_the_exit_code() -> None:
    result = processes.run(
        [sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
        timeout=60,
    )
    assert (result.returncode, result.stdout, result.stderr, result.stopped) == (3, "out\n", "err\n", None)


def test_input_reaches_the_process_and_stderr_can_be_merged() -> None:
    code = "import sys; data = sys.stdin.read(); print(data.upper()); print('e', file=sys.stderr)"
    result = processes.run([sys.executable, "-c", code], timeout=60, input="abc", stderr_to_stdout=True)
    assert result.stdout.split() == ["ABC", "e"]
    assert result.stderr == ""


def test_a_timeout_kills_the_whole_tree_within_its_bound(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    started = time.monotonic()
    with pytest.raises(processes.ProcessTimeout) as info:
        processes.run([sys.executable, "-c", spawner("time.sleep(120)"), str(pids)], timeout=1, grace=2)
    elapsed = time.monotonic() - started
    assert elapsed < 1 + 2 + 0.5 + 3  # the bound, the SIGTERM grace, and slack on a loaded machine
    assert "work done" in str(info.value)
    assert not any(alive(pid) for pid in read_pids(pids))


def test_a_daemon_left_behind_by_a_command_that_exited_is_reaped(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    result = processes.run([sys.executable, "-c", spawner("pass"), str(pids)], timeout=60)
    child, grandchild = read_pids(pids)
    assert result.returncode == 0
    assert not alive(child)
    assert not alive(grandchild)  # left its group and session, found by the launch token


def test_keep_daemons_leaves_a_started_server_running(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    processes.run([sys.executable, "-c", spawner("pass"), str(pids)], timeout=60, keep_daemons=True)
    _, grandchild = read_pids(pids)
    try:
        assert alive(grandchild)
    finally:
        processes.terminate([psutil.Process(grandchild)], grace=5)


def test_a_command_that_finished_its_work_but_never_exits_is_stopped(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    result = processes.run(
        [sys.executable, "-c", spawner("time.sleep(120)"), str(pids)],
        timeout=60,
        finished=lambda output: "work done" in output,
        linger=0.5,
    )
    assert result.stopped == "stopped 0.5s after its work was done"
    assert result.returncode < 0  # ended by a signal
    assert "work done" in result.stdout
    assert not any(alive(pid) for pid in read_pids(pids))


def test_a_service_that_ignores_sigterm_is_killed_with_its_children(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    stubborn = spawner("time.sleep(120)", setup="signal.signal(signal.SIGTERM, signal.SIG_IGN)")
    service = processes.Service.start(
        [sys.executable, "-c", stubborn, str(pids)], name="stubborn", log_path=tmp_path / "log"
    )
    child, grandchild = read_pids(pids)
    assert service.pid in processes.Service.running
    killed = service.stop(grace=1)
    assert any(f"pid={child}" in line for line in killed)  # needed SIGKILL
    assert not alive(child)
    assert not alive(grandchild)
    assert service.pid not in processes.Service.running
    assert "work done" in service.log_tail()


def test_every_process_carries_the_session_mark(tmp_path: Path) -> None:
    code = "import os; print(os.environ.get('QUBINODE_TEST_SESSION'))"
    result = processes.run([sys.executable, "-c", code], timeout=60, env={"PATH": os.environ["PATH"]})
    assert result.stdout.strip() == os.environ[processes.SESSION_VAR]
