"""What the recovery operators and the recovery sensor share: the keys of their XComs and reading them,
parsing switches, the runtime with the Airflow ``retry-from-failure`` (:func:`runtime_for`), and task
states of the run.

Nothing here imports the core at module import time: DAG files that import the operators stay light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.sdk import Context

    from qubinode_recovery_provider.models import Diagnosis, RecoveryPlan, TaskConfig
    from qubinode_recovery_provider.runtime import Runtime

#: Keys of the XComs the recovery operators push besides their return value.
DECISION_KEY = "decision"
APPROVAL_BODY_KEY = "approval_body"
ATTEMPT_KEY = "attempt"
VERIFICATION_KEY = "verification"
#: The approval's answer (:class:`~qubinode_recovery_provider.operators.approval.RecoveryApprovalOperator`).
APPROVAL_KEY = "approval"

#: Task states that mean "did not finish well".
FAILED_STATES = frozenset({"failed", "upstream_failed"})


def pull(context: Context, task_id: str | None, key: str | None = None) -> Any:
    """The XCom ``key`` (default the return value) of ``task_id`` in this run, ``None`` when absent."""
    if not task_id:
        return None
    ti = context["ti"]
    if key is None:
        return ti.xcom_pull(task_ids=task_id)
    return ti.xcom_pull(task_ids=task_id, key=key)


def switch(value: Any) -> bool | None:
    """``True``/``False`` for a bool or its usual spellings (rendered templates are strings), else None."""
    from qubinode_recovery_provider.recovery.policy import parse_switch

    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return parse_switch(value)


def text_or_none(value: Any) -> str | None:
    """A stripped string, or ``None`` for empty values and the rendered ``None``."""
    if value is None:
        return None
    text = str(value).strip()
    return None if text in {"", "None", "null"} else text


def run_task_states(context: Context, task_ids: list[str]) -> dict[str, str | None]:
    """States of ``task_ids`` in the current run (through the Task SDK); empty when unknown."""
    ti = context["ti"]
    try:
        found = ti.get_task_states(dag_id=ti.dag_id, run_ids=[ti.run_id], task_ids=task_ids)
    except Exception:
        return {}
    states = found.get(ti.run_id, {}) if isinstance(found, dict) else {}
    return {task_id: (str(state) if state is not None else None) for task_id, state in states.items()}


def runtime_for(conn_id: str | None = None) -> Runtime:
    """The process's runtime with the Airflow ``retry-from-failure`` implementation of this connection
    (a derived runtime: the process's own is not changed).

    The action waits for ``delay_seconds`` in the execute task (which defers instead of sleeping), so
    the implementation itself does not sleep.

    :param conn_id: the REST API connection; default ``[qubinode_recovery] recovery_conn_id``
    """
    from qubinode_recovery_provider import runtime
    from qubinode_recovery_provider.hooks.airflow_api import AirflowApiHook
    from qubinode_recovery_provider.recovery.retry_from_failure import (
        CLEAR_TIMEOUT_SECONDS,
        AirflowRetryFromFailure,
    )

    hook = AirflowApiHook(conn_id, timeout=CLEAR_TIMEOUT_SECONDS)
    return runtime.current().with_retry(AirflowRetryFromFailure(hook.get_client, honour_delay=False))


def load_diagnosis(payload: dict[str, Any] | None) -> tuple[Diagnosis, TaskConfig]:
    """The diagnosis and the failed task's configuration from the diagnose task's XCom.

    :raises ValueError: when the payload is missing (the diagnose task did not succeed)
    """
    from qubinode_recovery_provider.models import Diagnosis, TaskConfig

    if not payload or "diagnosis" not in payload:
        raise ValueError("no diagnosis: the diagnose task did not succeed")
    return Diagnosis.model_validate(payload["diagnosis"]), TaskConfig.model_validate(
        payload.get("task") or {}
    )


def load_plan(payload: dict[str, Any] | None) -> RecoveryPlan:
    """The recovery plan from the plan task's XCom.

    :raises ValueError: when the payload is missing (the plan task did not succeed)
    """
    from qubinode_recovery_provider.models import RecoveryPlan

    if not payload or "plan" not in payload:
        raise ValueError("no recovery plan: the plan task did not succeed")
    return RecoveryPlan.model_validate(payload["plan"])


def answer_of(event: dict[str, Any]) -> dict[str, Any]:
    """The JSON-ready answer of a Human-in-the-loop resume event (a person's, or the defaults applied at
    the timeout)."""
    chosen = [str(option) for option in event.get("chosen_options") or []]
    responded_at: Any = event.get("responded_at")
    return {
        "choice": chosen[0] if chosen else None,
        "chosen_options": chosen,
        "responded_by": approver(event),
        "responded_at": responded_at.isoformat() if hasattr(responded_at, "isoformat") else responded_at,
        "timed_out": bool(event.get("timedout")),
    }


def approval(context: Context, task_id: str | None) -> dict[str, Any] | None:
    """The answer of the approval task ``task_id`` in this run (:data:`APPROVAL_KEY`, else the return
    value of a plain ``ApprovalOperator``), ``None`` when it was not answered (or did not run)."""
    stored = pull(context, task_id, APPROVAL_KEY)
    if isinstance(stored, dict):
        return stored
    returned = pull(context, task_id)
    return answer_of(returned) if isinstance(returned, dict) and returned.get("chosen_options") else None


def approval_choice(answer: Any) -> str | None:
    """``Approve`` or ``Reject`` from an answer (:func:`approval`), ``None`` when nobody answered."""
    if not isinstance(answer, dict):
        return None
    if answer.get("choice"):
        return str(answer["choice"])
    chosen = answer.get("chosen_options") or []
    return str(chosen[0]) if chosen else None


def approver(payload: Any) -> str | None:
    """Who answered the approval, when known (``None`` for the defaults applied at a timeout)."""
    if not isinstance(payload, dict):
        return None
    user = payload.get("responded_by_user") or payload.get("responded_by") or {}
    if isinstance(user, dict):
        return user.get("name") or user.get("id")
    return str(user) if user else None
