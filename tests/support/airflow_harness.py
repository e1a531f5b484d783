"""Real Airflow for the tests, on the launcher of :mod:`support.processes` and the deployment code of
``scripts/local_airflow.py`` (shared with the demo, not copied).

- :func:`migrated_db` runs ``airflow db migrate`` once per session; every Airflow home of the tests
  starts from a copy of that database (:func:`new_home`, :func:`run_dag_tests`).
- :meth:`AirflowHome.dags_test` runs ``airflow dags test``; with ``use_executor=True`` the tasks run
  through the real LocalExecutor and task supervisor, which write per-attempt log files and talk to
  the execution API of a running API server.
- :func:`api_home` is one home shared by the tests that need a running API server (REST API v2,
  simple auth manager with a ``recovery`` user, and the execution API for ``--use-executor``). Its
  DAGs folder holds the test DAGs of ``tests/policies/dags`` and ``tests/notifications/dags`` and a
  stand-in ``qubinode_failure_recovery``. Its API server is a shared service: the root conftest stops
  it at the end of the session.
- :func:`run_dag_tests` runs ``dag.test()`` scenarios in one driver process per batch.

Why ``--use-executor`` runs get ``[core] parallelism = 1`` and a watchdog: in Airflow 3.3.2,
``LocalExecutor.end()`` (``airflow/executors/local_executor.py``) puts one ``None`` "poison pill" on
the shared task queue per worker that ``is_alive()`` *while it loops over the workers*; a worker that
has already taken an earlier pill and exited is skipped, so fewer pills than living workers are sent
and ``proc.join()`` (no timeout) waits forever on an idle worker ("Shutting down LocalExecutor;
waiting for running tasks to finish" as the last line). ``dags test`` starts ``parallelism`` workers
at once, so any run with two or more workers can hang after its DAG run has finished. One worker
cannot lose its pill. The watchdog is the second line: once Airflow logs that shutdown line the
process gets :data:`EXECUTOR_LINGER` seconds to exit, then its whole tree is stopped (the run and its
callbacks are over by then, everything a test reads is in the database and the output).
"""

from __future__ import annotations

import atexit
import json
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support import processes

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))

import local_airflow  # noqa: E402
from local_airflow import LocalAirflow  # noqa: E402

deployment_env = local_airflow.base_env

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
DAG_DIRS = (TESTS / "policies" / "dags", TESTS / "notifications" / "dags")
DRIVER = TESTS / "dags" / "dag_test_driver.py"
JWT_SECRET = "qubinode-tests-jwt-secret-0123456789abcdef"
API_USER, API_PASSWORD = "recovery", "recovery-pass-0123"
#: What Airflow logs when ``dag.test()`` has finished its run and shuts its LocalExecutor down.
EXECUTOR_SHUTDOWN = "Shutting down LocalExecutor"
#: Seconds a ``dags test --use-executor`` process gets to exit after :data:`EXECUTOR_SHUTDOWN`.
EXECUTOR_LINGER = 10.0
RECOVERY_STUB = """
from __future__ import annotations
import datetime
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("qubinode_failure_recovery", schedule=None, start_date=datetime.datetime(2024, 1, 1)):
    EmptyOperator(task_id="stand_in")
"""

free_port = processes.free_port
_STATE: dict[str, Any] = {}


def base_env(home: Path, dags: Path) -> dict[str, str]:
    """Environment of an isolated Airflow: its own home, DAGs, database and logs.

    :param home: AIRFLOW_HOME
    :param dags: the DAGs folder
    """
    return deployment_env(
        home,
        dags,
        {
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{API_USER}:user",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__QUBINODE_RECOVERY__STATE_DIR": str(home / "qubinode_state"),
            "AIRFLOW__QUBINODE_RECOVERY__SYSTEMD_UNITS": "",
            "PYTHONUNBUFFERED": "1",
        },
    )


@dataclass
class AirflowHome:
    """One AIRFLOW_HOME with its DAGs folder and environment.

    :param home: AIRFLOW_HOME
    :param dags: the DAGs folder
    :param env: the environment of its ``airflow`` commands
    """

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
    ) -> processes.Completed:
        """Run an ``airflow`` command (bounded); stdout and stderr are merged into ``stdout``.

        :param args: the subcommand and its arguments
        :param extra_env: more environment variables
        :param timeout: the bound, in seconds (:class:`support.processes.ProcessTimeout` after it)
        """
        return processes.run(
            [AIRFLOW, *args],
            env={**self.env, **(extra_env or {})},
            cwd=self.home,
            timeout=timeout,
            stderr_to_stdout=True,
        )

    def dags_test(
        self,
        dag_id: str,
        *,
        use_executor: bool = False,
        extra_env: dict[str, str] | None = None,
        timeout: float = 180,
    ) -> processes.Completed:
        """``airflow dags test`` (``use_executor``: through the LocalExecutor, the task supervisor and
        the execution API of a running API server; see the module docstring for the guard rails).

        :param dag_id: the DAG
        :param use_executor: run the tasks through the LocalExecutor
        :param extra_env: more environment variables
        :param timeout: the bound, in seconds, on the whole command
        """
        if not use_executor:
            return self.airflow("dags", "test", dag_id, extra_env=extra_env, timeout=timeout)
        return processes.run(
            [AIRFLOW, "dags", "test", dag_id, "--use-executor"],
            env={**self.env, **(extra_env or {}), "AIRFLOW__CORE__PARALLELISM": "1"},
            cwd=self.home,
            timeout=timeout,
            stderr_to_stdout=True,
            finished=lambda output: EXECUTOR_SHUTDOWN in output,
            linger=EXECUTOR_LINGER,
        )

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the Airflow metadata database.

        :param sql: one SQL statement
        :param params: its parameters
        """
        with sqlite3.connect(self.db, timeout=30) as conn:
            return conn.execute(sql, params).fetchall()


def migrated_db() -> Path:
    """A freshly migrated Airflow metadata database, made once per session (copy it, never use it)."""
    if "db" not in _STATE:
        root = Path(tempfile.mkdtemp(prefix="qrp-airflow-template-"))
        atexit.register(shutil.rmtree, root, True)
        home, dags = root / "home", root / "dags"
        home.mkdir()
        dags.mkdir()
        result = AirflowHome(home, dags, base_env(home, dags)).airflow("db", "migrate", timeout=300)
        assert result.returncode == 0, result.stdout[-3000:]
        _STATE["db"] = home / "airflow.db"
    return Path(_STATE["db"])


local_airflow.DB_TEMPLATE = migrated_db  # every LocalAirflow of the tests starts from a copy too


def new_home(
    root: Path,
    dag_files: dict[str, str] | None = None,
    dag_dirs: tuple[Path, ...] = (),
) -> AirflowHome:
    """A new AIRFLOW_HOME under ``root`` with a copy of the migrated database.

    :param root: an empty directory (a ``tmp_path``)
    :param dag_files: file name -> source, written to the DAGs folder
    :param dag_dirs: directories whose ``*.py`` files are copied to the DAGs folder
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
    """A running ``airflow api-server`` (a :class:`LocalAirflow` with that one component).

    :param deployment: the deployment
    """

    deployment: LocalAirflow

    @property
    def port(self) -> int:
        return self.deployment.port

    @property
    def url(self) -> str:
        return self.deployment.base_url

    def connection_env(self, conn_id: str = "airflow_api") -> dict[str, str]:
        """``AIRFLOW_CONN_<ID>`` for an http connection with the test user.

        :param conn_id: the connection id
        """
        conn = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": self.port,
            "login": API_USER,
            "password": API_PASSWORD,
        }
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn)}

    def running(self) -> bool:
        return all(s.poll() is None for s in self.deployment.services.values()) and bool(
            self.deployment.services
        )

    def stop(self) -> None:
        self.deployment.stop()


def start_api_server(airflow_home: AirflowHome, shared: bool = False) -> ApiServer:
    """Start ``airflow api-server`` on a free port for ``airflow_home`` and wait until it is healthy.

    :param airflow_home: the home (migrated database, users file)
    :param shared: shared by the session (the root conftest stops it at the end)
    """
    deployment = LocalAirflow(
        airflow_home.home,
        airflow_home.dags,
        components=("api-server",),
        username=API_USER,
        password=API_PASSWORD,
        role="user",
        migrate=False,
        shared=shared,
        connection=False,  # tests give their tasks the connection they need, or none
        extra_env={k: v for k, v in airflow_home.env.items() if k.startswith("AIRFLOW")},
    )
    try:
        deployment.start()
        deployment.wait_api(timeout=120)
    except BaseException:
        deployment.stop()
        raise
    return ApiServer(deployment)


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
    if server is None or not server.running():
        if server is not None:
            server.stop()
        server = start_api_server(home, shared=True)
        home.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"{server.url}/execution/"
        _STATE["api"] = (home, server)
    return home, server


def stop_all() -> None:
    """Stop the shared API server (the root conftest also stops every shared service at the end)."""
    if "api" in _STATE and _STATE["api"][1] is not None:
        _STATE["api"][1].stop()


# --- dag.test() scenarios in one driver process ---------------------------------------------------


class DagTestRuns:
    """The results of a batch of ``dag.test()`` runs in one Airflow home.

    :param home: AIRFLOW_HOME of the batch
    :param results: scenario name -> what the driver recorded
    :param output: the driver's output (task logs included)
    """

    def __init__(self, home: Path, results: dict[str, Any], output: str) -> None:
        self.home = home
        self.results = results
        self.output = output

    def __getitem__(self, name: str) -> dict[str, Any]:
        result = self.results.get(name)
        assert result is not None, f"scenario {name} did not run:\n{self.output[-6000:]}"
        assert "error" not in result, result["error"]
        return result

    def ledger(self) -> Any:
        from qubinode_recovery_provider.store import Ledger

        return Ledger(f"sqlite:///{self.home / 'qubinode_recovery' / 'ledger.db'}", self.home / "spool-test")

    def section(self, name: str) -> str:
        """The driver's output for one scenario (task logs included).

        :param name: the scenario
        """
        start = self.output.find(f"=== scenario {name} ===")
        end = self.output.find(f"=== end {name}:", start)
        return self.output[start:end] if start >= 0 else ""


def airflow_test_env(home: Path, dags_folder: Path) -> dict[str, str]:
    """The environment of a ``dag.test()`` driver: its own home, DAGs unpaused, the repository
    importable.

    :param home: AIRFLOW_HOME
    :param dags_folder: the DAGs folder
    """
    return deployment_env(
        home,
        dags_folder,
        {
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__QUBINODE_RECOVERY__RECOVERY_CONN_ID": "airflow_api",
            "PYTHONPATH": str(ROOT),
        },
    )


def run_dag_tests(
    tmp_path_factory: Any,
    scenarios: list[dict[str, Any]],
    dag_files: list[Path],
    timeout: float = 600,
    extra_env: dict[str, str] | None = None,
) -> DagTestRuns:
    """Run ``scenarios`` (see ``tests/dags/dag_test_driver.py``) on a copy of ``dag_files``, in a new
    home that starts from the session's migrated database.

    :param tmp_path_factory: pytest's ``tmp_path_factory``
    :param scenarios: the scenarios
    :param dag_files: DAG files copied to the DAGs folder
    :param timeout: the bound, in seconds, on the driver
    :param extra_env: more environment for the driver (connections, options)
    """
    base = tmp_path_factory.mktemp("dagtest")
    home, dags = base / "home", base / "dags"
    home.mkdir()
    dags.mkdir()
    for path in dag_files:
        shutil.copy2(path, dags / path.name)
    shutil.copy(migrated_db(), home / "airflow.db")
    spec, results = base / "scenarios.json", base / "results.json"
    spec.write_text(json.dumps(scenarios))
    done = processes.run(
        [sys.executable, str(DRIVER), str(spec), str(results)],
        env={**airflow_test_env(home, dags), **(extra_env or {})},
        timeout=timeout,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-6000:]
    return DagTestRuns(home, json.loads(results.read_text()) if results.exists() else {}, output)
