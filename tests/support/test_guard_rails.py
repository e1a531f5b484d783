"""The guard rails of ``tests/conftest.py``, run on a small test file in a pytest of its own: a leaked
thread or process fails the test that leaked it (the process is killed, even orphaned), a non-daemon
thread alive at the end fails the run, a test that starts Airflow without being in the slow tier fails,
a hang fails with the stacks and its process reaped, ``-m "not slow"`` leaves out the tests that use
PostgreSQL, and under xdist the controller reports what a worker left running, with a line per file."""

from __future__ import annotations

import os
import stat
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from support import processes

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent

#: Scenarios for one inner session. The orphan: a child starts a sleeper in a session of its own and
#: exits, so init adopts the sleeper and only the session mark can find it.
SCENARIOS = """
import subprocess, sys, threading, time

import pytest

stop = threading.Event()
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]
CHILD = (
    "import subprocess, sys; "
    f"p = subprocess.Popen({SLEEPER!r}, start_new_session=True); "
    "open(sys.argv[1], 'w').write(str(p.pid))"
)


@pytest.fixture(scope="session")
def pool():
    # alive at the end of the session however slow the machine (the interpreter waits for it at exit)
    thread = threading.Thread(target=time.sleep, args=(10,), name="session-pool")
    thread.start()
    return thread


def test_leaks_a_thread():
    threading.Thread(target=stop.wait, name="stray-worker", daemon=True).start()


def test_orphans_a_sleeper():
    subprocess.run([sys.executable, "-c", CHILD, PID_FILE], check=True, timeout=60)


def test_starts_airflow_unmarked():
    stop.set()
    subprocess.run(["airflow", "version"], check=True, timeout=60)


@pytest.mark.slow
def test_starts_airflow_marked():
    subprocess.run(["airflow", "version"], check=True, timeout=60)


def test_uses_the_pool(pool):
    assert pool.is_alive()


def test_clean():
    pass


def test_database(pg_url):
    raise AssertionError("must not run in the fast tier")
"""


def run_suite(tmp_path: Path, source: str, *args: str) -> processes.Completed:
    """Run one test file under the root conftest of this repository, in a pytest of its own."""
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text((TESTS / "conftest.py").read_text())
    (suite / "test_sample.py").write_text(textwrap.dedent(source))
    fake = tmp_path / "bin" / "airflow"  # a stand-in: only its name matters to the guard rails
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho airflow version 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)]),
        "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}",
    }
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "timeout=60", str(suite)]
    return processes.run([*argv, *args], timeout=180, env=env, cwd=suite, stderr_to_stdout=True)


Guarded = tuple[processes.Completed, Path]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Guarded:
    """One inner session of :data:`SCENARIOS`, without the PostgreSQL test (``-m "not database"``)."""
    tmp_path = tmp_path_factory.mktemp("guarded")
    pid_file = tmp_path / "sleeper.pid"
    source = SCENARIOS.replace("PID_FILE", repr(str(pid_file)))
    return run_suite(tmp_path, source, "-k", "not database"), pid_file


def test_a_leaked_thread_fails_the_test_that_started_it(guarded: Guarded) -> None:
    result, _ = guarded
    assert "ERROR at teardown of test_leaks_a_thread" in result.stdout
    assert "'stray-worker' (daemon)" in result.stdout


def test_a_leaked_process_fails_its_test_and_is_killed_even_when_orphaned(
    guarded: Guarded,
) -> None:
    result, pid_file = guarded
    assert "ERROR at teardown of test_orphans_a_sleeper" in result.stdout
    assert "processes still running after the test (now killed)" in result.stdout
    sleeper = int(pid_file.read_text())
    assert f"pid={sleeper} " in result.stdout
    assert not psutil.pid_exists(sleeper) or psutil.Process(sleeper).status() == psutil.STATUS_ZOMBIE


def test_starting_airflow_outside_the_slow_tier_fails(guarded: Guarded) -> None:
    result, _ = guarded
    assert "ERROR at teardown of test_starts_airflow_unmarked" in result.stdout
    assert "started a slow-tier program without being in the slow tier" in result.stdout
    assert "ERROR at teardown of test_starts_airflow_marked" not in result.stdout


def test_a_non_daemon_thread_alive_at_the_end_fails_the_run(guarded: Guarded) -> None:
    result, _ = guarded
    assert result.returncode == 1, result.stdout
    assert "still running at the end of the session (the run fails)" in result.stdout
    assert "'session-pool' (non-daemon)" in result.stdout
    # the leaks and the unmarked start are the only errors: the other tests pass
    assert "6 passed, 1 deselected, 3 errors" in result.stdout


def test_a_hanging_test_fails_with_the_stacks_and_its_process_is_reaped(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    result = run_suite(
        tmp_path,
        f"""
        import sys

        import pytest
        from support import processes

        CODE = "import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"

        @pytest.mark.timeout(2)
        def test_hangs():
            processes.run([sys.executable, "-c", CODE], timeout=600)
        """,
    )
    assert result.returncode == 1, result.stdout
    assert "Timeout" in result.stdout
    assert "in _wait" in result.stdout  # the stack of the waiting test is in the report
    pid = int(pid_file.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_under_xdist_the_fast_tier_runs_and_the_controller_reports_leftovers(tmp_path: Path) -> None:
    source = SCENARIOS.replace("PID_FILE", "'unused'")
    result = run_suite(tmp_path, source, "-n", "1", "-m", "not slow", "-k", "pool or clean or database")
    assert result.returncode == 1, result.stdout
    assert "2 passed" in result.stdout  # test_database (PostgreSQL) is slow: left out
    assert "test_database" not in result.stdout
    assert "[gw0] 'session-pool' (non-daemon)" in result.stdout
    assert "-> test_sample.py" in result.stdout  # the per-file progress lines of the controller
    assert "<- test_sample.py: 2 passed in " in result.stdout
