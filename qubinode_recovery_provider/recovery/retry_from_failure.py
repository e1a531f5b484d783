"""The ``retry-from-failure`` action carried out through Airflow's REST API v2: clear the failed task
instances of the failed run, so the scheduler resumes the run from them.

``POST /api/v2/dags/{dag_id}/clearTaskInstances`` with ``dag_run_id``, the failed ``task_ids``,
``only_failed: true`` (finished upstream work is kept: it is the checkpoint), ``include_downstream`` (the
tasks after the failed one run again too), ``reset_dag_runs: true`` (the run goes back to queued) and
``dry_run: false`` -- the API's own default for ``dry_run`` is true, which would clear nothing.

Plain Python over the provider's API client: the caller says where the client comes from. In Airflow the
recovery operators give it the connection's hook, in a runtime of their own
(``operators/common.runtime_for``)::

    hook = AirflowApiHook()
    api.configure(retry=AirflowRetryFromFailure(lambda: hook.get_client(timeout=CLEAR_TIMEOUT_SECONDS)))
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
#: Seconds per request of the clear (it may touch many task instances on a loaded server).
CLEAR_TIMEOUT_SECONDS = 30.0


class AirflowRetryFromFailure:
    """``retry-from-failure`` through the Airflow REST API v2.

    :param client_factory: builds the API client for one clear (it is closed afterwards); an error it
        raises (:class:`~qubinode_recovery_provider.airflow_api.AirflowAPIError`) fails the action
    :param honour_delay: sleep ``delay_seconds`` before clearing. The recovery DAG's execute task waits
        without holding a worker slot (it defers) and turns this off.
    :param sleep: injectable for tests
    """

    def __init__(
        self,
        client_factory: Callable[[], AirflowAPIClient],
        *,
        honour_delay: bool = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.honour_delay = honour_delay
        self.sleep = sleep
        self._client_factory = client_factory

    def __repr__(self) -> str:
        return f"AirflowRetryFromFailure(honour_delay={self.honour_delay})"

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
            with self._client_factory() as client:
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


__all__ = ["CLEAR_TIMEOUT_SECONDS", "NOTE", "AirflowRetryFromFailure"]
