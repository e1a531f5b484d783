"""``RecoveryApprovalOperator``: Airflow's ``ApprovalOperator`` whose answer the next steps can read.

Airflow's ``ApprovalOperator`` skips its downstream tasks on *Reject* by raising (the Task SDK's
``DownstreamTasksSkipped``), so its return value, the answer, is never stored for a Reject, and the steps
after it cannot tell a rejection from no approval at all. This operator stores the answer first, as the
XCom ``approval``: ``{"choice", "chosen_options", "responded_by", "responded_at", "timed_out"}``.
``timed_out`` is true when nobody answered within ``response_timeout`` and Airflow applied the
``defaults`` (``Reject`` in the recovery DAG).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.hitl import ApprovalOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class RecoveryApprovalOperator(ApprovalOperator):
    """An approval whose answer (also a *Reject*, also a timeout) is kept as the XCom ``approval``."""

    ui_color = "#fff0c2"

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from qubinode_recovery_provider.operators.common import APPROVAL_KEY, answer_of

        if "error" not in event:  # an error event fails the task below, as Airflow's operator does
            context["ti"].xcom_push(key=APPROVAL_KEY, value=answer_of(event))
        return super().execute_complete(context=context, event=event)


__all__ = ["RecoveryApprovalOperator"]
