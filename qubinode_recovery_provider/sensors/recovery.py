"""``RecoveredRunSensor``: wait until a recovered (cleared) DAG run reaches a final state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

if TYPE_CHECKING:
    from airflow.sdk import Context


class RecoveredRunSensor(BaseSensorOperator):
    """Wait for a DAG run -- typically the failed run a recovery just resumed -- to succeed or fail.

    Succeeds when the run succeeds; fails (no retries) when it ends failed, after pushing the XCom
    ``verification`` with the run's and the watched tasks' states, so that an escalation can say why.
    States are read through the Task SDK, so the sensor needs no API connection.

    By default it pokes in ``reschedule`` mode: between pokes the task gives its worker slot back. With
    ``deferrable=True`` it waits in the triggerer instead
    (:class:`~qubinode_recovery_provider.triggers.RecoveredRunTrigger`).

    :param target_dag_id: the DAG of the watched run (templated)
    :param target_run_id: the watched run (templated)
    :param target_task_ids: tasks whose states are reported: a list or a comma-separated string
        (templated)
    :param deferrable: wait in the triggerer
    """

    template_fields: Sequence[str] = ("target_dag_id", "target_run_id", "target_task_ids")
    ui_color = "#e3f6e5"

    def __init__(
        self,
        *,
        target_dag_id: str,
        target_run_id: str,
        target_task_ids: list[str] | str | None = None,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.target_dag_id = target_dag_id
        self.target_run_id = target_run_id
        self.target_task_ids = target_task_ids
        self.deferrable = deferrable

    def _target(self) -> tuple[str, str, list[str]]:
        from airflow.sdk.exceptions import AirflowFailException

        from qubinode_recovery_provider.operators.common import text_or_none

        dag_id, run_id = text_or_none(self.target_dag_id), text_or_none(self.target_run_id)
        if not dag_id or not run_id:
            raise AirflowFailException("nothing to verify: the DAG id or the run id is empty")
        raw = self.target_task_ids
        items = raw.split(",") if isinstance(raw, str) else list(raw or [])
        task_ids = [t for t in (text_or_none(item) for item in items) if t]
        return dag_id, run_id, task_ids

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        from qubinode_recovery_provider.triggers.recovery import RecoveredRunTrigger

        dag_id, run_id, task_ids = self._target()
        self.defer(
            trigger=RecoveredRunTrigger(dag_id, run_id, task_ids, poke_interval=self.poke_interval),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) if self.timeout else None,
        )
        return None

    def poke(self, context: Context) -> PokeReturnValue | bool:
        from qubinode_recovery_provider.triggers.recovery import read_run_status

        dag_id, run_id, task_ids = self._target()
        ti = context["ti"]
        status = read_run_status(dag_id, run_id, task_ids, ti.get_dagrun_state, ti.get_task_states)
        if not status.final:
            self.log.info("Waiting: %s", status.reason)
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._verdict(context, status.to_dict()))

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume from the trigger with the run's final status."""
        from airflow.sdk.exceptions import AirflowFailException

        if not event:
            raise AirflowFailException("the trigger ended without a status")
        return self._verdict(context, event)

    def _verdict(self, context: Context, status: dict[str, Any]) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from qubinode_recovery_provider.operators.common import VERIFICATION_KEY

        context["ti"].xcom_push(key=VERIFICATION_KEY, value=status)
        if not status.get("recovered"):
            raise AirflowFailException(f"not recovered: {status.get('reason')}")
        self.log.info("Recovered: %s", status.get("reason"))
        return status


__all__ = ["RecoveredRunSensor"]
