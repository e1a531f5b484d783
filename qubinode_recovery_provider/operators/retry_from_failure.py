"""The Airflow implementation of the ``retry-from-failure`` action: clear the failed task instances of
the failed run through the REST API v2, so the scheduler resumes the run from them.

``POST /api/v2/dags/{dag_id}/clearTaskInstances`` with ``dag_run_id``, the failed ``task_ids``,
``only_failed: true`` (finished upstream work is kept: it is the checkpoint), ``include_downstream`` (the
tasks after the failed one run again too), ``reset_dag_runs: true`` (the run goes back to queued) and
``dry_run: false`` -- the API's own default for ``dry_run`` is true, which would clear nothing.

Register it with the core through :func:`qubinode_recovery_provider.api.configure`::

    api.configure(retry=AirflowRetryFromFailure())
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from qubinode_recovery_provider.recovery.actions import ActionResult

if TYPE_CHECKING:
    from qubinode_recovery_provider.airflow_api import AirflowAPIClient
    from qubinode_recovery_provider.recovery.actions import RetryFromFailureArgs

log = logging.getLogger(__name__)

NOTE = "qubinode-recovery: retry-from-failure"


class AirflowRetryFromFailure:
    """``retry-from-failure`` through the Airflow REST API v2.

    :param conn_id: the API connection; default ``[qubinode_recovery] recovery_conn_id``
    :param honour_delay: sleep ``delay_seconds`` before clearing. The recovery DAG's execute task waits
        without holding a worker slot (it defers) and turns this off.
    :param client_factory: builds the API client (tests, other transports)
    :param sleep: injectable for tests
    :param timeout: seconds per API request
    """

    def __init__(
        self,
        conn_id: str | None = None,
        *,
        honour_delay: bool = True,
        client_factory: Callable[[], AirflowAPIClient] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = 30.0,
    ) -> None:
        self.conn_id = conn_id
        self.honour_delay = honour_delay
        self.sleep = sleep
        self.timeout = timeout
        self._client_factory = client_factory

    def __repr__(self) -> str:
        return f"AirflowRetryFromFailure(conn_id={self.conn_id!r}, honour_delay={self.honour_delay})"

    def _client(self) -> AirflowAPIClient:
        if self._client_factory is not None:
            return self._client_factory()
        from qubinode_recovery_provider.airflow_api import AirflowAPIClient

        return AirflowAPIClient.from_connection(self.conn_id, timeout=self.timeout)

    def __call__(self, args: RetryFromFailureArgs) -> ActionResult:
        """Clear the failed task instances named by ``args``.

        :param args: the validated arguments
        :returns: succeeded when the API accepted the clear; the detail lists what was cleared
        """
        from qubinode_recovery_provider.airflow_api import AirflowAPIError

        if self.honour_delay and args.delay_seconds:
            log.info("retry-from-failure: waiting %ss before clearing", args.delay_seconds)
            self.sleep(args.delay_seconds)
        try:
            with self._client() as client:
                answer = client.clear_task_instances(
                    args.dag_id,
                    dag_run_id=args.run_id,
                    task_ids=list(args.task_ids),
                    dry_run=False,
                    only_failed=True,
                    include_downstream=args.include_downstream,
                    include_upstream=False,
                    reset_dag_runs=True,
                    note=NOTE,
                )
        except AirflowAPIError as exc:
            return ActionResult(False, f"clearTaskInstances failed: {exc}"[:500])
        detail, cleared = _describe(args, answer)
        return ActionResult(True, detail, changed=cleared)


def _describe(args: RetryFromFailureArgs, answer: dict[str, object]) -> tuple[str, bool]:
    """One line saying what was cleared, and whether anything was."""
    found = answer.get("task_instances")
    cleared = [ti for ti in found if isinstance(ti, dict)] if isinstance(found, list) else []
    names = sorted({str(ti.get("task_id")) for ti in cleared})
    where = f"{args.dag_id} run {args.run_id}"
    if not names:
        detail = (
            f"already handled: nothing left to clear in {where} (no failed task instance of "
            f"{', '.join(args.task_ids)}: it was re-run or marked since the failure)"
        )
    else:
        detail = f"cleared {len(cleared)} task instance(s) in {where}: {', '.join(names)}"
    if args.execution_timeout_seconds:
        detail += (
            f"; a longer execution_timeout ({args.execution_timeout_seconds}s) was asked for, which the "
            "REST API cannot set: the task runs again with its own timeout"
        )
    return detail, bool(names)


__all__ = ["NOTE", "AirflowRetryFromFailure"]
