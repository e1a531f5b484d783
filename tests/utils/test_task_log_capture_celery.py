"""The failing command's own output reaches the diagnosis under a real CeleryExecutor.

The same DAG and the same outcomes as the LocalExecutor test of ``test_task_log_capture_airflow.py``
(``qrp_capture_credential``: a BashOperator prints ``Permission denied (publickey).`` to stderr and
exits 255, ``retries=3``, ``DiagnosisRetryPolicy()`` and ``RecoveryNotifier()``): the task must be
diagnosed ``credential`` and fail after ONE try. Here the scheduler hands the task to Celery through a
private ``redis-server`` (broker and result backend), and an ``airflow celery worker`` runs it: the
worker's pool process is the task supervisor and forks the child that runs the task, the policy and
the callbacks. The test checks that the task really went that way (the worker's log, the dump's
parent process) before it checks the diagnosis.

Every process (redis, the Airflow components, the Celery worker and its pool) is started through
:mod:`support.processes` and stopped at the end, pass or fail.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from capture_checks import (
    CANARY,
    DAG_ID,
    EVIDENCE,
    TASK_ID,
    assert_failed_once_on_credential,
    copy_dags,
    provider_env,
    read_dump,
)
from support.airflow_harness import LocalAirflow
from support.processes import Service, free_port

pytestmark = pytest.mark.integration

COMPONENTS = ("api-server", "scheduler", "dag-processor", "celery worker")
#: What ``execute_workload`` logs in the worker when it takes a task from the queue.
WORKLOAD_RECEIVED = "Executing workload in Celery"


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A private ``redis-server`` on a free port of 127.0.0.1, nothing written to disk; stopped after."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    server = Service.start(
        [*argv, "--dir", str(workdir), "--logfile", ""],
        name=f"redis-server :{port}",
        log_path=workdir / "redis.log",
        cwd=workdir,
    )
    url = f"redis://127.0.0.1:{port}"
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            deadline = time.monotonic() + 30
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"redis-server exited ({server.poll()}):\n{server.log_tail()}")
                try:
                    if client.ping():
                        break
                except redis.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"redis-server not answering after 30s:\n{server.log_tail()}")
                time.sleep(0.2)
        finally:
            client.close()
        yield url
    finally:
        server.stop()


def celery_env(tmp_path: Path, redis_url: str) -> dict[str, str]:
    """The provider's settings of the LocalExecutor test, and a CeleryExecutor on ``redis_url``."""
    return {
        **provider_env(tmp_path),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": f"{redis_url}/0",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"{redis_url}/1",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
        "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
        # the worker's log server: a port of its own, not the default 8793 another run may hold
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
    }


def test_under_the_celery_executor_the_task_fails_after_one_try(tmp_path: Path, redis_url: str) -> None:
    dags = copy_dags(tmp_path)
    home = tmp_path / "airflow_home"
    with LocalAirflow(
        home, dags, extra_env=celery_env(tmp_path, redis_url), components=COMPONENTS
    ) as airflow:
        airflow.wait_until(
            "the Celery worker", lambda: " ready." in airflow.log_tail("celery worker", 400), timeout=180
        )
        airflow.wait_ready([DAG_ID], timeout=240)
        run_id = airflow.trigger(DAG_ID)
        state = airflow.wait_for_run(DAG_ID, run_id, timeout=240)
        task_states = airflow.task_states(DAG_ID, run_id)
        xcom = airflow.xcom(DAG_ID, run_id, TASK_ID, "qubinode_retry_decision")
        worker_pid = airflow.services["celery worker"].pid
        worker_log = airflow.log_tail("celery worker", 100_000)
        scheduler_log = airflow.log_tail("scheduler", 100_000)

    # the task went through Celery: the scheduler ran a CeleryExecutor and the worker took it off the
    # queue once (the process tree of the task is checked with the dump below)
    assert "CeleryExecutor" in scheduler_log, scheduler_log[-3000:]
    received = [line for line in worker_log.splitlines() if WORKLOAD_RECEIVED in line]
    assert len(received) == 1, worker_log[-5000:]
    assert f"dag_id='{DAG_ID}'" in received[0], received[0]
    assert f"task_id='{TASK_ID}'" in received[0], received[0]

    assert_failed_once_on_credential(home, state, task_states, xcom)

    # the capture worked in the process that ran the task: a child of the supervisor, which is a
    # pool process of the ``airflow celery worker`` this test started (not this process, not the
    # scheduler)
    dumps = read_dump(tmp_path)
    assert list(dumps) == ["try_1.json"]
    dump = dumps["try_1.json"]
    assert dump["pid"] != os.getpid()
    supervisor, pool_parent = dump["ancestors"][:2]
    assert " ".join(supervisor["cmdline"]).startswith("airflow supervisor:"), dump["ancestors"]
    assert pool_parent["pid"] == worker_pid, dump["ancestors"]
    # Celery retitles its main process: "[celeryd: celery@<host>:MainProcess] -active- (celery worker)"
    assert " ".join(pool_parent["cmdline"]).startswith("[celeryd: "), dump["ancestors"]
    assert dump["installed"] is True
    assert EVIDENCE in dump["lines"]
    assert "connecting to root@10.0.0.5 with token ***" in dump["lines"]
    assert CANARY not in json.dumps(dump)
