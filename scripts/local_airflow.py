"""A real, throw-away Airflow for the demo and the tests: SQLite, LocalExecutor, and the scheduler, DAG
processor, API server and triggerer started as ``airflow`` subprocesses, torn down together.

    with LocalAirflow(home, dags_folder) as airflow:
        airflow.wait_for_dags(["qubinode_failure_recovery"])
        run = airflow.trigger("my_dag", conf={...})
        state = airflow.wait_for_run("my_dag", run["dag_run_id"], timeout=120)

Everything is bounded: each command and each wait has a timeout, and :meth:`LocalAirflow.stop` ends
every component with its whole process tree (SIGTERM, then SIGKILL) even when a step failed. Processes
are started and reaped by ``tests/support/processes.py``, the one launcher the tests use too (the test
harness ``tests/support/airflow_harness.py`` builds on this module). The REST API is reached with the
provider's own client
(:class:`~qubinode_recovery_provider.airflow_api.AirflowAPIClient`) as the admin user, and the same
credentials are given to Airflow as the ``airflow_api`` connection (type ``airflow_api``), which the
RecoveryNotifier, the recovery DAG and the shadow scan reach through ``AirflowApiHook``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
try:  # under pytest, tests/ is on sys.path already: share the tests' launcher module
    from support import processes
except ImportError:  # the demo: find it after everything else on sys.path
    sys.path.append(str(ROOT / "tests"))
    from support import processes

from qubinode_recovery_provider.airflow_api import (  # noqa: E402
    AirflowAPIClient,
    AirflowAPIError,
    APISettings,
)

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: A function returning a migrated metadata database that :meth:`LocalAirflow.start` copies instead of
#: running ``airflow db migrate`` (the test harness sets it: one migration per test session).
DB_TEMPLATE: Callable[[], Path] | None = None
RECOVERY_DAG_ID = "qubinode_failure_recovery"
FINAL_RUN_STATES = frozenset({"success", "failed"})
USERNAME = "admin"


free_port = processes.free_port


def venv_bin() -> Path:
    """The directory of the running interpreter (the venv's ``bin``), where ``airflow`` lives."""
    return Path(sys.executable).parent


def base_env(home: Path, dags_folder: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any Airflow setting, for an Airflow of its own.

    :param home: AIRFLOW_HOME
    :param dags_folder: the DAGs folder
    :param extra: more variables (win over these)
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "PATH": f"{venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
    )
    env.update(extra or {})
    return env


def airflow_env(
    home: Path,
    dags_folder: Path,
    port: int,
    password: str,
    extra: Mapping[str, str] | None = None,
    *,
    username: str = USERNAME,
    role: str = "admin",
    connection: bool = True,
) -> dict[str, str]:
    """The environment of every Airflow process of the local deployment.

    :param home: AIRFLOW_HOME (SQLite metadata DB, logs, the provider's ledger and reports)
    :param dags_folder: the DAGs folder
    :param port: the API server's port on 127.0.0.1
    :param password: the user's password
    :param extra: more variables (win over these)
    :param username: the simple auth manager's one user (also the ``airflow_api`` connection's login)
    :param role: that user's role
    :param connection: define the ``airflow_api`` connection (tasks look connections up through the
        API server, so a deployment without it lets tasks see no connection at all)
    """
    base = f"http://127.0.0.1:{port}"
    conn = {
        "conn_type": "airflow_api",  # the provider's type (tests/support/airflow_harness.py keeps "http")
        "host": "127.0.0.1",
        "port": port,
        "schema": "http",
        "login": username,
        "password": password,
    }
    env = base_env(home, dags_folder)
    env.update(
        {
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{username}:{role}",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
            "AIRFLOW__API__BASE_URL": base,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
    )
    if connection:
        env["AIRFLOW_CONN_AIRFLOW_API"] = json.dumps(conn)
    env.update(extra or {})
    return env


class LocalAirflow:
    """Airflow components of one throw-away deployment.

    :param home: AIRFLOW_HOME; created
    :param dags_folder: the DAGs folder
    :param extra_env: more environment variables for every component (win over :func:`airflow_env`)
    :param components: the ``airflow`` subcommands to run (one word or more: ``"celery worker"``)
    :param port: the API server's port (default: a free one)
    :param username: the API user
    :param password: that user's password (default: a random one)
    :param role: that user's role
    :param migrate: run ``airflow db migrate`` first (``False``: the home has a migrated DB already)
    :param shared: the test session's shared deployment (stopped at the end of the session)
    :param connection: define the ``airflow_api`` connection for the components
    """

    def __init__(
        self,
        home: Path,
        dags_folder: Path,
        *,
        extra_env: Mapping[str, str] | None = None,
        components: Iterable[str] = COMPONENTS,
        port: int | None = None,
        username: str = USERNAME,
        password: str | None = None,
        role: str = "admin",
        migrate: bool = True,
        shared: bool = False,
        connection: bool = True,
    ) -> None:
        self.home = Path(home)
        self.dags_folder = Path(dags_folder)
        self.port = port or free_port()
        self.username = username
        self.password = password or secrets.token_urlsafe(12)
        self.components = tuple(components)
        self.migrate = migrate
        self.shared = shared
        self.env = airflow_env(
            self.home,
            self.dags_folder,
            self.port,
            self.password,
            extra_env,
            username=username,
            role=role,
            connection=connection,
        )
        self.services: dict[str, processes.Service] = {}
        self._client: AirflowAPIClient | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- life cycle ------------------------------------------------------------------------------

    def __enter__(self) -> LocalAirflow:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def airflow(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one ``airflow`` command in this deployment and return its result (raises on failure).

        :param args: the subcommand and its arguments
        :param timeout: the bound, in seconds
        """
        return processes.run(
            [str(venv_bin() / "airflow"), *args], timeout=timeout, env=self.env, cwd=self.home, check=True
        )

    def start(self) -> None:
        """Migrate the metadata DB (unless told not to) and start the components (returns once they
        are launched)."""
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(
            json.dumps({self.username: self.password}), encoding="utf-8"
        )
        if self.migrate and DB_TEMPLATE is not None:
            shutil.copy(DB_TEMPLATE(), self.home / "airflow.db")
        elif self.migrate:
            self.airflow("db", "migrate", timeout=300)
        for name in self.components:
            command = [str(venv_bin() / "airflow"), *name.split()]
            if name == "api-server":
                command += ["--port", str(self.port), "--host", "127.0.0.1", "--workers", "1"]
            self.services[name] = processes.Service.start(
                command,
                name=f"airflow {name}",
                log_path=self._log_path(name),
                env=self.env,
                cwd=self.home,
                shared=self.shared,
            )

    def stop(self, grace: float = 15.0) -> None:
        """Stop every component and its whole process tree: SIGTERM, SIGKILL what is left after
        ``grace`` seconds (a scheduler's LocalExecutor may never finish its shutdown by itself).

        :param grace: seconds between SIGTERM and SIGKILL
        """
        if self._client is not None:
            self._client.close()
            self._client = None
        processes.stop_services(list(self.services.values()), grace)
        self.services.clear()

    def check_alive(self) -> None:
        """Raise when a component has exited (with the end of its log)."""
        for name, service in self.services.items():
            code = service.poll()
            if code is not None:
                raise RuntimeError(f"airflow {name} exited ({code}):\n{service.log_tail()}")

    def _log_path(self, name: str) -> Path:
        """Where a component's output goes: ``<home>/<name>.log``, words joined by ``-``."""
        return self.home / f"{'-'.join(name.split())}.log"

    def log_tail(self, name: str, lines: int = 40) -> str:
        """The end of a component's log.

        :param name: the component (``scheduler``, ``api-server``, ...)
        :param lines: how many lines
        """
        try:
            text = self._log_path(name).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_api(self, timeout: float = 90) -> None:
        """Wait until the API server answers its health check.

        :param timeout: the bound, in seconds
        """

        def healthy() -> bool:
            try:
                return httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        self.wait_until("the API server", healthy, timeout, interval=0.3)

    # --- REST API --------------------------------------------------------------------------------

    @property
    def client(self) -> AirflowAPIClient:
        """The admin's REST API client."""
        if self._client is None:
            settings = APISettings(self.base_url, username=self.username, password=self.password, timeout=20)
            self._client = AirflowAPIClient(settings)
        return self._client

    def wait_until(self, what: str, check: Callable[[], Any], timeout: float, interval: float = 1.0) -> Any:
        """Call ``check`` until it returns something truthy; raise ``TimeoutError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                value = check()
            except AirflowAPIError as exc:
                value, last_error = None, exc
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout:g}s waiting for {what} (last error: {last_error})")

    def wait_ready(self, dag_ids: Iterable[str], timeout: float = 180) -> None:
        """Wait until the scheduler is healthy and every DAG in ``dag_ids`` is parsed without error."""
        wanted = list(dag_ids)

        def healthy() -> bool:
            health = self.client.request("GET", "/monitor/health")
            return all(
                (health.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor")
            )

        self.wait_until("a healthy scheduler and DAG processor", healthy, timeout)

        def parsed() -> bool:
            errors = self.client.request("GET", "/importErrors").get("import_errors", [])
            if errors:
                raise RuntimeError(f"DAG import errors: {json.dumps(errors, indent=2)[:4000]}")
            return all(self._dag_exists(dag_id) for dag_id in wanted)

        self.wait_until(f"DAGs {', '.join(wanted)}", parsed, timeout)
        for dag_id in wanted:
            self.client.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def _dag_exists(self, dag_id: str) -> bool:
        try:
            self.client.request("GET", f"/dags/{dag_id}")
        except AirflowAPIError as exc:
            if exc.status_code == 404:
                return False
            raise
        return True

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None, run_id: str | None = None) -> str:
        """Start a run and return its run id."""
        run = self.client.trigger_dag_run(dag_id, conf=conf, run_id=run_id)
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.client.get_dag_run(dag_id, run_id).get("state"))

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 240) -> str:
        """Wait until the run is final and return its state."""

        def final() -> str | None:
            state = self.run_state(dag_id, run_id)
            return state if state in FINAL_RUN_STATES else None

        return str(self.wait_until(f"run {run_id} of {dag_id}", final, timeout, interval=2.0))

    def runs(self, dag_id: str) -> list[dict[str, Any]]:
        """The DAG's runs, oldest first."""
        answer = self.client.request("GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "run_after"})
        return list(answer.get("dag_runs", []))

    def recovery_run_for(self, dag_id: str, run_id: str, timeout: float = 120) -> str:
        """The ``qubinode_failure_recovery`` run started for the failed run ``run_id`` of ``dag_id``."""

        def find() -> str | None:
            for run in self.runs(RECOVERY_DAG_ID):
                conf = run.get("conf") or {}
                if conf.get("failed_dag_id") == dag_id and conf.get("failed_run_id") == run_id:
                    return str(run["dag_run_id"])
            return None

        return str(self.wait_until(f"the recovery run of {dag_id} {run_id}", find, timeout, interval=2))

    def task_states(self, dag_id: str, run_id: str) -> dict[str, tuple[str | None, int]]:
        """``{task_id: (state, try_number)}`` of a run, in the order the tasks (last) started."""
        tis = sorted(self.task_instances(dag_id, run_id).values(), key=lambda ti: ti.get("start_date") or "~")
        return {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in tis}

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        """The run's task instances by task id."""
        answer = self.client.request("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances")
        return {ti["task_id"]: ti for ti in answer.get("task_instances", [])}

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """One XCom value (deserialized), ``None`` when there is none."""
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/xcomEntries/{key}"
        try:
            entry = self.client.request("GET", path, params={"deserialize": "true", "stringify": "false"})
        except AirflowAPIError as exc:
            if exc.status_code == 404:
                return None
            raise
        return entry.get("value")

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The text of one try's log."""
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/logs/{try_number}"
        answer = self.client.request("GET", path, params={"full_content": "true"})
        content = answer.get("content", [])
        if isinstance(content, str):
            return content
        return "\n".join(_log_line(e) for e in content)

    def hitl_detail(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        """The Human-in-the-loop request of a task waiting for input."""
        return dict(self.client.request("GET", _hitl_path(dag_id, run_id, task_id)))

    def respond_hitl(self, dag_id: str, run_id: str, task_id: str, option: str) -> dict[str, Any]:
        """Answer a Human-in-the-loop request (for example ``Approve``)."""
        body = {"chosen_options": [option], "params_input": {}}
        return dict(self.client.request("PATCH", _hitl_path(dag_id, run_id, task_id), json=body))


def _log_line(entry: Any) -> str:
    """One log record as text: its message, and for a failure the exception (``type: message``) as the
    UI shows it above the stack."""
    if not isinstance(entry, dict):
        return str(entry)
    line = " ".join(str(v) for v in (entry.get("event"), entry.get("reason")) if v)
    for error in entry.get("error_detail") or []:
        if isinstance(error, dict):
            line += f"\n{error.get('exc_type')}: {error.get('exc_value')}"
    return line


def _hitl_path(dag_id: str, run_id: str, task_id: str) -> str:
    return f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/-1/hitlDetails"


def prepare_dags_folder(target: Path, sources: Iterable[Path]) -> Path:
    """Copy DAG files and folders into ``target`` (a fresh DAGs folder) and return it."""
    target.mkdir(parents=True, exist_ok=True)
    for source in sources:
        destination = target / source.name
        if source.is_dir():
            shutil.copytree(source, destination, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, destination)
    return target


__all__ = [
    "COMPONENTS",
    "RECOVERY_DAG_ID",
    "LocalAirflow",
    "airflow_env",
    "base_env",
    "free_port",
    "prepare_dags_folder",
]
