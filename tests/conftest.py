"""Shared fixtures and the suite's guard rails.

Guard rails (see ``docs/testing.md``):

- every test runs under a per-test timeout (pytest-timeout; the slow tier gets a longer one) and a
  leak check: a thread or a process it started that is still alive after it (and its fixtures) ended
  fails it, with the list -- the processes are killed. At the end of the session, a non-daemon thread
  or any process of the session still alive fails the run;
- the ``slow`` marker is put on every test that starts Airflow, PostgreSQL or a scheduler (by its
  ``integration`` marker, the fixtures it uses or the Airflow harness its module uses); a test that
  starts one of those programs without being in the slow tier fails, so ``make test-fast`` never
  starts them;
- every process goes through ``support.processes`` (bounded, own session, tree reaped).

PostgreSQL: a real server, started by the test session itself. ``pg_server`` (session) runs
``initdb`` and ``pg_ctl`` from Debian's ``postgresql`` package (installed by ``scripts/setup.sh``) in a
private temporary directory on a free port (another one when a process took it before the server
bound it). PostgreSQL refuses to run as root, so under root the
commands run as the ``postgres`` user through ``runuser``; otherwise as the current user. ``pg_url``
gives each test a fresh database (pytest-postgresql's ``DatabaseJanitor``), ``make_pg_server`` a
private server a test may stop and restart. These tests are never skipped: a missing PostgreSQL is an
error.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_postgresql.janitor import DatabaseJanitor
from support import airflow_harness, leaks, processes  # airflow_harness: LocalAirflow copies its DB
from support.processes import free_port
from support.progress import FileProgress

from qubinode_recovery_provider import config

PG_SUPERUSER = "postgres"
RUN_AS = "postgres"


def find_pg_bindir() -> Path:
    """``QUBINODE_PG_BINDIR``, else the directory of ``pg_ctl`` on PATH, else the newest
    ``/usr/lib/postgresql/<version>/bin``."""
    configured = os.environ.get("QUBINODE_PG_BINDIR")
    if configured:
        return Path(configured)
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).parent
    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "pg_ctl").exists()]
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: run scripts/setup.sh (installs postgresql)")

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.parent.name))

    return max(candidates, key=version)


class PostgresServer:
    """A throw-away PostgreSQL cluster in ``base`` listening on 127.0.0.1:``port``."""

    def __init__(self, base: Path, bindir: Path | None = None) -> None:
        self.base = base
        self.bindir = bindir or find_pg_bindir()
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = PG_SUPERUSER
        self.datadir = base / "data"
        self.logfile = base / "postgresql.log"
        self._as_root = os.geteuid() == 0
        self._service: processes.Service | None = None

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        # ``pg_ctl start`` leaves the server running on purpose; ``remove()`` stops it
        result = processes.run(command, cwd=self.base, timeout=120, keep_daemons=args[0] == "pg_ctl")
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{self.log_tail()}"
            )
        return result

    def log_size(self) -> int:
        try:
            return self.logfile.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        """What the server logged after ``offset`` (a :meth:`log_size`)."""
        return processes.read_from(self.logfile, offset)[0]

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def init(self) -> None:
        if self._as_root:
            entry = pwd.getpwnam(RUN_AS)
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            PG_SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.base} -c listen_addresses={self.host} -c fsync=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-l",
            str(self.logfile),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        # the leak checks count the server and its backends as a service, not as a test's leftovers
        pid = int((self.datadir / "postmaster.pid").read_text().split()[0])
        self._service = processes.Service.adopt(pid, name=f"postgresql :{self.port}")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``mode="immediate"`` kills it like a crash."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop")
        if self._service is not None:
            self._service.forget()
            self._service = None

    def is_running(self) -> bool:
        return self._run("pg_ctl", "-D", str(self.datadir), "status", check=False).returncode == 0

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{dbname}"

    def janitor(self, dbname: str) -> DatabaseJanitor:
        return DatabaseJanitor(
            user=self.user, host=self.host, port=self.port, dbname=dbname, connection_timeout=30
        )

    def remove(self) -> None:
        if self.is_running():
            self.stop("immediate")
        if self._service is not None:  # it died some other way: make sure its backends did too
            self._service.stop(grace=5)
            self._service = None
        shutil.rmtree(self.base, ignore_errors=True)


#: Ports tried for a new server: its port is chosen free, then bound seconds later (after initdb), and
#: another process (the other xdist worker's server, a client's ephemeral port) may take it meanwhile.
PG_PORT_ATTEMPTS = 5


def _new_server() -> PostgresServer:
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="qubinode-pg-")))
    try:
        server.init()
        for attempt in range(1, PG_PORT_ATTEMPTS + 1):
            logged = server.log_size()
            try:
                server.start()
                break
            except RuntimeError:
                if attempt == PG_PORT_ATTEMPTS or "Address already in use" not in server.log_since(logged):
                    raise
                server.port = free_port()
    except BaseException:
        server.remove()
        raise
    return server


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the whole session."""
    server = _new_server()
    yield server
    server.remove()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty database on ``pg_server`` (dropped afterwards)."""
    dbname = f"test_{uuid.uuid4().hex[:12]}"
    with pg_server.janitor(dbname):
        yield pg_server.url(dbname)


@pytest.fixture
def make_pg_server() -> Iterator[Callable[[], PostgresServer]]:
    """A factory of private servers (for tests that stop or kill PostgreSQL); removed afterwards."""
    servers: list[PostgresServer] = []

    def make() -> PostgresServer:
        server = _new_server()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.remove()


@pytest.fixture(scope="session", autouse=True)
def _private_pattern_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Compiled Hyperscan databases go to a session directory, not the user's ~/.cache (subprocesses
    such as Airflow tasks inherit the variable)."""
    previous = os.environ.get("QUBINODE_RECOVERY_CACHE_DIR")
    os.environ["QUBINODE_RECOVERY_CACHE_DIR"] = str(tmp_path_factory.mktemp("pattern_cache"))
    yield
    if previous is None:
        os.environ.pop("QUBINODE_RECOVERY_CACHE_DIR", None)
    else:
        os.environ["QUBINODE_RECOVERY_CACHE_DIR"] = previous


# --- the provider's configuration ------------------------------------------------------------------


@pytest.fixture
def config_env() -> dict[str, str]:
    """Environment variables :func:`isolated_config` sets after it cleaned the environment: none here; a
    test folder's conftest (or a test module) overrides this fixture with the settings its tests need."""
    return {}


@pytest.fixture
def isolated_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, config_env: dict[str, str]
) -> Iterator[None]:
    """The provider's configuration of this test alone: no ``airflow.cfg`` (``AIRFLOW_HOME`` is
    ``tmp_path/airflow_home``, not created; no ``AIRFLOW_CONFIG``), no ``AIRFLOW__QUBINODE_RECOVERY__*``
    option and no ``AIRFLOW_CONN_*`` connection from the environment running the tests, then
    :func:`config_env`. The cached ``airflow.cfg`` values are forgotten before and after the test."""
    for name in list(os.environ):
        if name.startswith(("AIRFLOW__QUBINODE_RECOVERY__", "AIRFLOW_CONN_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow_home"))
    monkeypatch.delenv("AIRFLOW_CONFIG", raising=False)
    for name, value in config_env.items():
        monkeypatch.setenv(name, value)
    config.clear_cache()
    yield
    config.clear_cache()


# --- guard rails: tiers, timeouts, leaks -----------------------------------------------------------

#: Programs that put a test in the slow tier: Airflow, PostgreSQL, redis (the Celery broker) and the
#: ``dag.test()`` drivers.
SLOW_PROGRAMS = frozenset(
    {"airflow", "pg_ctl", "initdb", "postgres", "redis-server", "dag_test_driver.py", "dagbag_probe.py"}
)
#: Fixtures that start one of them.
SLOW_FIXTURES = frozenset(
    {"pg_server", "pg_url", "make_pg_server", "dag_runs", "airflow_home_template", "airflow_env", "probe"}
)
#: Helpers that start one of them: a test module holding one is in the slow tier.
SLOW_HELPERS = frozenset(
    {
        ("support.airflow_harness", "run_dag_tests"),
        ("support.airflow_harness", "api_home"),
        ("support.airflow_harness", "new_home"),
        ("support.airflow_harness", "migrated_db"),
        ("support.airflow_harness", "start_api_server"),
        ("local_airflow", "LocalAirflow"),
        ("shadow_site", "run_airflow"),
        ("shadow_site", "start_api_server"),
    }
)
#: Per-test timeouts in seconds (pytest-timeout): ``timeout`` in pyproject.toml for the fast tier,
#: this one for the slow tier (fixture set-up included: the first test of a module starts Airflow).
SLOW_TIMEOUT = 900
#: How long a test's threads and processes may take to end after it, in seconds: enough for a thread
#: told to stop in a fixture's teardown to unwind, short enough that one still working is caught.
THREAD_GRACE, PROCESS_GRACE = 0.25, 3.0

_started: list[str] = []  # slow-tier programs the current test started (the audit hook fills it)
#: Every ``LocalAirflow`` of the tests starts from a copy of the session's migrated metadata DB.
DB_TEMPLATE = airflow_harness.local_airflow.DB_TEMPLATE
_LEFTOVERS = pytest.StashKey[tuple[list[str], list[str]]]()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Note every slow-tier program started from this process (``subprocess.Popen`` audit event):
    the program itself, or a path among its arguments (``runuser -- /usr/lib/.../initdb``,
    ``python tests/dags/dag_test_driver.py``); a bare word argument such as a container named
    ``postgres`` is not a program."""
    if event != "subprocess.Popen":
        return
    argv = args[1]
    words = [argv] if isinstance(argv, str | bytes) else list(argv or ())
    for position, word in enumerate(words):
        if not isinstance(word, str | bytes | os.PathLike):
            continue
        text = os.fsdecode(word)
        if (position == 0 or os.sep in text) and os.path.basename(text) in SLOW_PROGRAMS:
            _started.append(os.path.basename(text))


@pytest.hookimpl(trylast=True)  # after the terminal reporter is registered
def pytest_configure(config: pytest.Config) -> None:
    processes.mark_session()  # every process of the session inherits the mark
    sys.addaudithook(_audit)
    config.addinivalue_line("markers", "slow: starts Airflow, PostgreSQL or a scheduler (set by conftest)")
    is_controller = getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if is_controller and reporter is not None:  # xdist prints dots only: add a line per test file
        config.pluginmanager.register(FileProgress(reporter), "qrp-file-progress")


def _module_is_slow(module: Any) -> bool:
    for value in vars(module).values():
        key = (getattr(value, "__module__", None), getattr(value, "__name__", None))
        if key in SLOW_HELPERS:
            return True
    return False


def _is_slow(item: pytest.Item) -> bool:
    if item.get_closest_marker("slow") or item.get_closest_marker("integration"):
        return True
    if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        return True
    module = getattr(item, "module", None)
    return module is not None and _module_is_slow(module)


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _is_slow(item):
            item.add_marker(pytest.mark.slow)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))
    if hasattr(config, "workerinput"):
        # an xdist worker: the slow files first (``--dist loadfile --no-loadscope-reorder`` hands the
        # files out in this order), so the longest ones do not start last and leave a worker idle
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    _started.clear()


@pytest.fixture(autouse=True)
def _guard_rails(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test when a thread or process it started outlives it (the processes are killed), or
    when it starts Airflow or PostgreSQL without being in the slow tier."""
    before = leaks.snapshot()
    yield
    problems = []
    if _started and request.node.get_closest_marker("slow") is None:
        problems.append(
            leaks.report(
                "started a slow-tier program without being in the slow tier (mark it slow):",
                sorted(set(_started)),
            )
        )
    threads = leaks.leaked_threads(before, THREAD_GRACE)
    if threads:
        problems.append(
            leaks.report("threads still running after the test:", map(leaks.describe_thread, threads))
        )
    stray = leaks.leaked_processes(before, PROCESS_GRACE)
    if stray:
        described = [processes.describe(p) for p in stray]
        processes.terminate(stray, grace=5)
        problems.append(leaks.report("processes still running after the test (now killed):", described))
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture(scope="session", autouse=True)
def _shared_services() -> Iterator[None]:
    """Stop the services the tests share (the API server of ``api_home``) at the end of the session."""
    yield
    processes.stop_all(shared_only=True)


@pytest.hookimpl(trylast=True)  # after every session fixture is torn down
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    threads, stray = leaks.session_leftovers()
    if stray:
        processes.stop_all()
        processes.terminate(leaks.session_processes(), grace=5)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: its controller reports and fails the run
        workeroutput["qrp_leftovers"] = (threads, stray)
        return
    earlier_threads, earlier_stray = session.config.stash.get(_LEFTOVERS, ([], []))
    threads, stray = earlier_threads + threads, earlier_stray + stray
    if threads or stray:
        session.config.stash[_LEFTOVERS] = (threads, stray)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect what a worker found still running at its end."""
    threads, stray = getattr(node, "workeroutput", {}).get("qrp_leftovers", ([], []))
    if threads or stray:
        name = node.gateway.id
        earlier_threads, earlier_stray = node.config.stash.get(_LEFTOVERS, ([], []))
        node.config.stash[_LEFTOVERS] = (
            earlier_threads + [f"[{name}] {t}" for t in threads],
            earlier_stray + [f"[{name}] {p}" for p in stray],
        )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    threads, stray = config.stash.get(_LEFTOVERS, ([], []))
    if not (threads or stray):
        return
    terminalreporter.section("still running at the end of the session (the run fails)", sep="=", red=True)
    if threads:
        terminalreporter.line(leaks.report("non-daemon threads:", threads))
    if stray:
        terminalreporter.line(leaks.report("processes (now killed):", stray))
