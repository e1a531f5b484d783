"""Start a run of the recovery DAG: through the REST API (an Airflow connection) or the Task SDK.

- ``api``: ``POST /api/v2/dags/{dag_id}/dagRuns`` through the connection
  ``[qubinode_recovery] recovery_conn_id``, read by ``hooks.airflow_api.AirflowApiHook``. Works wherever
  the API server is reachable: workers, the DAG processor, scripts.
- ``task_sdk``: inside a running task, the same request ``TriggerDagRunOperator`` makes: the task
  process asks its supervisor, which calls the execution API with the task's own short-lived token. No
  credentials at all; only in the task process (the DAG processor's supervisor does not serve it).
- ``auto`` (default): ``api`` when the connection exists, else ``task_sdk`` when called from a task
  callback, else nothing is sent and the request stays pending.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from qubinode_recovery_provider.airflow_api import AirflowAPIClient, AirflowAPIConfigError, AirflowAPIError
from qubinode_recovery_provider.hooks.airflow_api import AirflowApiHook

VIA_CHOICES = ("auto", "api", "task_sdk")


@dataclass(frozen=True)
class TriggerResult:
    """What happened to one request.

    :param delivered: the run exists now (created, or created by an earlier request).
    :param via: ``api`` or ``task_sdk``; empty when nothing was sent.
    :param detail: a one-line explanation.
    :param retry_later: worth trying again (server down, not configured yet).
    """

    delivered: bool
    via: str = ""
    detail: str = ""
    retry_later: bool = True


def task_sdk_available(context: Mapping[str, Any] | None) -> bool:
    """Whether this is a task process that can ask its supervisor to start a run.

    The task runner puts ``exception`` into the context of every task callback; the DAG processor,
    whose supervisor does not serve this request, never does.

    :param context: the callback's context.
    """
    if context is None or "exception" not in context:
        return False
    try:
        from airflow.sdk.execution_time import task_runner
    except ImportError:
        return False
    return getattr(task_runner, "SUPERVISOR_COMMS", None) is not None


class RecoveryRunStarter:
    """Sends run requests for the recovery DAG.

    :param conn_id: the API connection; default ``[qubinode_recovery] recovery_conn_id``.
    :param via: ``auto``, ``api`` or ``task_sdk``.
    :param timeout: seconds for each API request.
    """

    def __init__(self, *, conn_id: str | None = None, via: str = "auto", timeout: float = 5.0) -> None:
        if via not in VIA_CHOICES:
            raise ValueError(f"via must be one of {', '.join(VIA_CHOICES)}, got {via!r}")
        self.conn_id = conn_id
        self.via = via
        self.timeout = timeout

    def send(
        self,
        dag_id: str,
        run_id: str,
        conf: Mapping[str, Any],
        *,
        note: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> TriggerResult:
        """Request one run; never raises.

        :param dag_id: the recovery DAG.
        :param run_id: the run id (a second request with it finds the run already there).
        :param conf: the run's conf.
        :param note: a note for the run.
        :param context: the callback's context (decides whether the Task SDK can be used).
        """
        try:
            return self._send(dag_id, run_id, conf, note, context)
        except Exception as exc:  # the notifier must never fail the task's finalisation
            return TriggerResult(False, "", f"{type(exc).__name__}: {exc}")

    def _send(
        self,
        dag_id: str,
        run_id: str,
        conf: Mapping[str, Any],
        note: str | None,
        context: Mapping[str, Any] | None,
    ) -> TriggerResult:
        if self.via == "task_sdk":
            return _via_task_sdk(dag_id, run_id, conf, note)
        try:
            client = AirflowApiHook(self.conn_id, timeout=self.timeout).get_client()
        except AirflowAPIConfigError as exc:
            if self.via == "auto" and task_sdk_available(context):
                return _via_task_sdk(dag_id, run_id, conf, note)
            return TriggerResult(False, "", f"{exc}; no Task SDK here")
        return _via_api(client, dag_id, run_id, conf, note)


def _via_api(
    client: AirflowAPIClient, dag_id: str, run_id: str, conf: Mapping[str, Any], note: str | None
) -> TriggerResult:
    with client:
        try:
            client.trigger_dag_run(dag_id, conf=conf, run_id=run_id, note=note)
        except AirflowAPIError as exc:
            if exc.status_code == 409:
                return TriggerResult(True, "api", f"run {run_id} already exists")
            retry_later = (
                exc.status_code is None or exc.status_code >= 500 or exc.status_code in (401, 403, 404)
            )
            return TriggerResult(False, "api", str(exc), retry_later)
    return TriggerResult(True, "api", f"started {dag_id} run {run_id} through {client.settings.base_url}")


def _via_task_sdk(dag_id: str, run_id: str, conf: Mapping[str, Any], note: str | None) -> TriggerResult:
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import ErrorResponse, TriggerDagRun

    comms = getattr(task_runner, "SUPERVISOR_COMMS", None)
    if comms is None:
        return TriggerResult(False, "task_sdk", "not inside a task process")
    answer = comms.send(TriggerDagRun(dag_id=dag_id, run_id=run_id, conf=dict(conf), note=note))
    if isinstance(answer, ErrorResponse):
        error = getattr(answer.error, "value", answer.error)
        if str(error) == "DAGRUN_ALREADY_EXISTS":
            return TriggerResult(True, "task_sdk", f"run {run_id} already exists")
        return TriggerResult(False, "task_sdk", f"{error}: {answer.detail}")
    return TriggerResult(True, "task_sdk", f"started {dag_id} run {run_id} through the task's supervisor")


__all__ = ["VIA_CHOICES", "RecoveryRunStarter", "TriggerResult", "task_sdk_available"]
