"""The installed program ends without the interpreter's teardown (``console_main``), losing nothing.

What must hold: the same output and exit code as :func:`~qubinode_recovery_provider.cli.main` in
process; the exit handlers still run; a thread still running is waited for (the usual exit then);
a reader that stops early gets no traceback.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from cli_process import run_cli
from support import processes

from qubinode_recovery_provider.cli import main

ERROR = "fatal: [kvm1]: UNREACHABLE! ssh: connect to host 10.1.1.5 port 22: No route to host"


def test_the_program_prints_what_main_prints_with_its_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["patterns", "list", "--json"]
    code = main(argv)
    expected = capsys.readouterr().out
    result = run_cli(argv, timeout=120)
    assert result.code == code == 0
    assert result.out == expected
    assert len(expected.splitlines()) > 50  # several buffers' worth: every one flushed


def test_the_exit_code_of_a_problem_and_of_bad_input_survive(tmp_path: Path) -> None:
    runs = tmp_path / "runs.json"
    runs.write_text(json.dumps({"dag_runs": [], "task_instances": []}))
    assert run_cli(["scan", "--runs-file", str(runs), "--json"], timeout=120).code == 0
    bad = run_cli(["scan", "--runs-file", str(tmp_path / "missing.json"), "--json"], timeout=120)
    assert bad.code == 2
    assert bad.err.strip()


def _python(code: str, tmp_path: Path, env: dict[str, str] | None = None) -> processes.Completed:
    return processes.run([sys.executable, "-c", code], timeout=120, cwd=tmp_path, env=env)


def _diagnose_with_handler(prelude: str, tmp_path: Path) -> processes.Completed:
    """``console_main`` running ``diagnose`` after ``prelude``, with an exit handler that leaves a file;
    the handler must have run."""
    code = (
        "import atexit, sys, threading\n"
        "from pathlib import Path\n"
        f"{prelude}"
        "atexit.register(lambda: Path('handler-ran').write_text('yes'))\n"
        f"sys.argv = ['qubinode-recovery', 'diagnose', '--error', {ERROR!r}, '--json']\n"
        "from qubinode_recovery_provider.cli import console_main\n"
        "console_main()\n"
    )
    done = _python(code, tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "handler-ran").read_text() == "yes"
    return done


def test_exit_handlers_run_before_the_quick_exit(tmp_path: Path) -> None:
    done = _diagnose_with_handler("", tmp_path)
    assert json.loads(done.stdout)["root_cause"]


def test_a_thread_still_running_is_waited_for(tmp_path: Path) -> None:
    prelude = (
        "go = threading.Event()\n"
        "def late():\n"
        "    go.wait()\n"
        "    Path('thread-finished').write_text('yes')\n"
        "threading.Thread(target=late).start()\n"
        "import qubinode_recovery_provider.cli as cli\n"
        "plain_main = cli.main\n"
        "def main_then_release():\n"
        "    code = plain_main()\n"
        "    go.set()\n"  # the thread finishes only after main: the exit must wait for it
        "    return code\n"
        "cli.main = main_then_release\n"
    )
    _diagnose_with_handler(prelude, tmp_path)
    assert (tmp_path / "thread-finished").read_text() == "yes"


def test_a_daemon_thread_still_blocked_does_not_hold_the_exit(tmp_path: Path) -> None:
    never = "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
    _diagnose_with_handler(never, tmp_path)


def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path) -> None:
    code = (
        "import os, sys\n"
        "read_end, write_end = os.pipe()\n"
        "os.dup2(write_end, 1)\n"
        "os.close(read_end)\n"  # nobody reads stdout any more: the first flush fails
        "sys.argv = ['qubinode-recovery', 'patterns', 'list', '--json']\n"
        "from qubinode_recovery_provider.cli import console_main\n"
        "console_main()\n"
    )
    done = _python(code, tmp_path)
    assert done.returncode == 0
    assert "Traceback" not in done.stderr
    assert "BrokenPipeError" not in done.stderr


def test_output_that_cannot_be_written_is_not_a_success(tmp_path: Path) -> None:
    """stdout on a full disk (``/dev/full``): the last buffer fails when it is flushed at the end. The
    usual exit says so and ends with 120; so must the quick exit, not 0 in silence."""
    code = (
        "import os, sys\n"
        "os.dup2(os.open('/dev/full', os.O_WRONLY), 1)\n"
        f"sys.argv = ['qubinode-recovery', 'diagnose', '--error', {ERROR!r}]\n"
        "from qubinode_recovery_provider.cli import console_main\n"
        "console_main()\n"
    )
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # the report is one buffer
    done = _python(code, tmp_path, env=buffered)
    assert done.returncode == 120, done.stderr
    assert "No space left on device" in done.stderr
    assert "Traceback" not in done.stderr
