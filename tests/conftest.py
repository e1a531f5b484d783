"""Shared fixtures. PostgreSQL: a real server, started by the test session itself.

``pg_server`` (session) runs ``initdb`` and ``pg_ctl`` from Debian's ``postgresql`` package (installed
by ``scripts/setup.sh``) in a private temporary directory on a free port. PostgreSQL refuses to run as
root, so under root the commands run as the ``postgres`` user through ``runuser``; otherwise as the
current user. ``pg_url`` gives each test a fresh database (pytest-postgresql's ``DatabaseJanitor``),
``make_pg_server`` a private server a test may stop and restart. These tests are never skipped: a
missing PostgreSQL is an error.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytest_postgresql.janitor import DatabaseJanitor

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


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", RUN_AS, "--", *command]
        result = subprocess.run(
            command, cwd=self.base, capture_output=True, text=True, timeout=120, check=False
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip()}\n{self.log_tail()}"
            )
        return result

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

    def stop(self, mode: str = "fast") -> None:
        """Stop the server; ``mode="immediate"`` kills it like a crash."""
        self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "-t", "60", "stop")

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
        shutil.rmtree(self.base, ignore_errors=True)


def _new_server() -> PostgresServer:
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="qubinode-pg-")))
    try:
        server.init()
        server.start()
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
