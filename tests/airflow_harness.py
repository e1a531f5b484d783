"""Real Airflow for the policy, notifier and REST client tests: ``airflow dags test`` in subprocesses.

- :func:`migrated_db` runs ``airflow db migrate`` once per session; every Airflow test gets its own
  AIRFLOW_HOME with a copy of that database (:func:`new_home`).
- :func:`api_home` is one home shared by the tests that need a running API server: ``airflow
  api-server`` on a free port (REST API v2, simple auth manager with a ``recovery`` user, and the
  execution API that ``airflow dags test --use-executor`` needs to run tasks through the real
  LocalExecutor supervisor, which writes per-attempt log files). Its DAGs folder holds the test DAGs
  of ``tests/policies/dags`` and ``tests/notifications/dags`` and a stand-in ``qubinode_failure_recovery``.

Everything started here is stopped at the end of the session, by process id.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

TESTS = Path(__file__).resolve().parent
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_DIRS = (TESTS / "policies" / "dags", TESTS / "notifications" / "dags")
JWT_SECRET = "qubinode-tests-jwt-secret-0123456789abcdef"
API_USER, API_PASSWORD = "recovery", "recovery-pass-0123"
RECOVERY_STUB = """
from __future__ import annotations
import datetime
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("qubinode_failure_recovery", schedule=None, start_date=datetime.datetime(2024, 1, 1)):
    EmptyOperator(task_id="stand_in")
"""

_STATE: dict[str, Any] = {}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrubbed_environ() -> dict[str, str]:
    """The test process's environment without Airflow or provider settings."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) and k not in ("AIRFLOW_HOME",)
    }


def base_env(home: Path, dags: Path) -> dict[str, str]:
    """Environment of an isolated Airflow: its own home, DAGs, database and logs."""
    env = _scrubbed_environ()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{API_USER}:user",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__QUBINODE_RECOVERY__STATE_DIR": str(home / "qubinode_state"),
            "AIRFLOW__QUBINODE_RECOVERY__SYSTEMD_UNITS": "",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
        },
    )
    return env


@dataclass
class AirflowHome:
    """One AIRFLOW_HOME with its DAGs folder and environment."""

    home: Path
    dags: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def state_dir(self) -> Path:
        return Path(self.env["AIRFLOW__QUBINODE_RECOVERY__STATE_DIR"])

    @property
    def db(self) -> Path:
        return self.home / "airflow.db"

    def airflow(
        self,
        *args: str,
        extra_env: dict[str, str] | None = None,
        timeout: float = 180,
    ) -> subprocess.CompletedProcess[str]:
        """Run an ``airflow`` command; stdout and stderr are merged into ``stdout``."""
        return subprocess.run(
            [AIRFLOW, *args],
            env={**self.env, **(extra_env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.home,
        )

    def dags_test(
        self,
        dag_id: str,
        *,
        use_executor: bool = False,
        extra_env: dict[str, str] | None = None,
        timeout: float = 180,
    ) -> subprocess.CompletedProcess[str]:
        """``airflow dags test`` (``--use-executor``: through the LocalExecutor and a running API server)."""
        args = ["dags", "test", dag_id] + (["--use-executor"] if use_executor else [])
        return self.airflow(*args, extra_env=extra_env, timeout=timeout)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the Airflow metadata database."""
        with sqlite3.connect(self.db, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()


def migrated_db() -> Path:
    """A freshly migrated Airflow metadata database, made once per session."""
    if "db" not in _STATE:
        root = Path(tempfile.mkdtemp(prefix="qrp-airflow-template-"))
        atexit.register(shutil.rmtree, root, True)
        home, dags = root / "home", root / "dags"
        home.mkdir()
        dags.mkdir()
        result = AirflowHome(home, dags, base_env(home, dags)).airflow("db", "migrate", timeout=240)
        assert result.returncode == 0, result.stdout[-3000:]
        _STATE["db"] = home / "airflow.db"
    return Path(_STATE["db"])


def new_home(
    root: Path,
    dag_files: dict[str, str] | None = None,
    dag_dirs: tuple[Path, ...] = (),
) -> AirflowHome:
    """A new AIRFLOW_HOME under ``root`` with a copy of the migrated database.

    :param root: an empty directory (a ``tmp_path``).
    :param dag_files: file name -> source, written to the DAGs folder.
    :param dag_dirs: directories whose ``*.py`` files are copied to the DAGs folder.
    """
    home, dags = root / "airflow_home", root / "dags"
    home.mkdir(parents=True)
    dags.mkdir(parents=True)
    shutil.copy(migrated_db(), home / "airflow.db")
    for directory in dag_dirs:
        for path in directory.glob("*.py"):
            shutil.copy(path, dags / path.name)
    for name, source in (dag_files or {}).items():
        (dags / name).write_text(source)
    (home / "passwords.json").write_text(json.dumps({API_USER: API_PASSWORD}))
    return AirflowHome(home, dags, base_env(home, dags))


@dataclass
class ApiServer:
    """A running ``airflow api-server``."""

    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def connection_env(self, conn_id: str = "airflow_api") -> dict[str, str]:
        """``AIRFLOW_CONN_<ID>`` for an http connection with the test user."""
        conn = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": self.port,
            "login": API_USER,
            "password": API_PASSWORD,
        }
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn)}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _start_api_server(airflow_home: AirflowHome) -> ApiServer:
    port = free_port()
    log_path = airflow_home.home / "api-server.log"
    env = {
        **airflow_home.env,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [AIRFLOW, "api-server", "--port", str(port), "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=airflow_home.home,
        )
    server = ApiServer(port, process, log_path)
    atexit.register(server.stop)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"api-server exited: {log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"{server.url}/api/v2/monitor/health", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"api-server did not start: {log_path.read_text()[-3000:]}")


def api_home() -> tuple[AirflowHome, ApiServer]:
    """The shared home with every test DAG, the stand-in recovery DAG, and its running API server."""
    if "api" not in _STATE:
        root = Path(tempfile.mkdtemp(prefix="qrp-airflow-api-"))
        atexit.register(shutil.rmtree, root, True)
        home = new_home(root, {"qubinode_failure_recovery.py": RECOVERY_STUB}, DAG_DIRS)
        result = home.airflow("dags", "reserialize", timeout=240)
        assert result.returncode == 0, result.stdout[-3000:]
        _STATE["api"] = (home, None)
    home, server = _STATE["api"]
    if server is None or server.process.poll() is not None:
        server = _start_api_server(home)
        home.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{server.url}/execution/"
        _STATE["api"] = (home, server)
    return home, server


def stop_all() -> None:
    """Stop the API server (the session's last fixture calls this)."""
    if "api" in _STATE and _STATE["api"][1] is not None:
        _STATE["api"][1].stop()
