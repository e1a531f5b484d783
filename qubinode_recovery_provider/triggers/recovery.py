"""``RecoveredRunTrigger``: wait in the triggerer until a DAG run reaches a final state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

#: Final states of a DAG run.
FINAL_RUN_STATES = frozenset({"success", "failed"})


@dataclass(frozen=True)
class RunStatus:
    """Where a watched run stands.

    :param dag_id: the DAG
    :param run_id: the run
    :param run_state: the run's state (``queued``, ``running``, ``success``, ``failed``)
    :param task_states: the states of the watched tasks
    """

    dag_id: str
    run_id: str
    run_state: str
    task_states: dict[str, str | None] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.run_state in FINAL_RUN_STATES

    @property
    def recovered(self) -> bool:
        return self.run_state == "success"

    @property
    def reason(self) -> str:
        tasks = ", ".join(f"{task} {state}" for task, state in sorted(self.task_states.items()))
        tasks = f" ({tasks})" if tasks else ""
        if self.recovered:
            return f"run {self.run_id} of {self.dag_id} succeeded{tasks}"
        return f"run {self.run_id} of {self.dag_id} is {self.run_state}{tasks}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "run_state": self.run_state,
            "task_states": dict(self.task_states),
            "recovered": self.recovered,
            "reason": self.reason,
        }


def read_run_status(
    dag_id: str,
    run_id: str,
    task_ids: list[str],
    get_run_state: Callable[..., Any],
    get_task_states: Callable[..., Any],
) -> RunStatus:
    """Read a run's state (and its watched tasks') through the Task SDK accessors.

    :param dag_id: the DAG
    :param run_id: the run
    :param task_ids: the tasks whose states are reported
    :param get_run_state: ``RuntimeTaskInstance.get_dagrun_state``
    :param get_task_states: ``RuntimeTaskInstance.get_task_states``
    """
    state = get_run_state(dag_id=dag_id, run_id=run_id)
    run_state = str(getattr(state, "value", state))
    task_states: dict[str, str | None] = {}
    if task_ids:
        found = get_task_states(dag_id=dag_id, run_ids=[run_id], task_ids=task_ids) or {}
        for task_id, value in (found.get(run_id) or {}).items():
            task_states[task_id] = str(getattr(value, "value", value)) if value is not None else None
    return RunStatus(dag_id, run_id, run_state, task_states)


class RecoveredRunTrigger(BaseTrigger):
    """Poll a DAG run until it succeeds or fails; the event carries :meth:`RunStatus.to_dict`.

    :param dag_id: the DAG of the watched run
    :param run_id: the watched run
    :param task_ids: tasks whose states the event reports
    :param poke_interval: seconds between polls
    """

    def __init__(
        self, dag_id: str, run_id: str, task_ids: list[str] | None = None, poke_interval: float = 30.0
    ) -> None:
        super().__init__()
        self.dag_id = dag_id
        self.run_id = run_id
        self.task_ids = list(task_ids or [])
        self.poke_interval = poke_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "dag_id": self.dag_id,
                "run_id": self.run_id,
                "task_ids": self.task_ids,
                "poke_interval": self.poke_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance
        from asgiref.sync import sync_to_async

        read = sync_to_async(read_run_status)
        while True:
            status = await read(
                self.dag_id,
                self.run_id,
                self.task_ids,
                RuntimeTaskInstance.get_dagrun_state,
                RuntimeTaskInstance.get_task_states,
            )
            if status.final:
                yield TriggerEvent(status.to_dict())
                return
            self.log.info("%s; polling again in %ss", status.reason, self.poke_interval)
            await asyncio.sleep(self.poke_interval)


__all__ = ["FINAL_RUN_STATES", "RecoveredRunTrigger", "RunStatus", "read_run_status"]
