"""``PlanRecoveryOperator``: turn the diagnosis into a ranked recovery plan."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class PlanRecoveryOperator(BaseOperator):
    """Plan the recovery of a diagnosed failure with the core
    :class:`~qubinode_recovery_provider.recovery.RecoveryPlanner` and record the plan in the ledger.

    The planner knows the allowlisted actions this deployment can run (``retry-from-failure`` through
    the Airflow REST API, ``wait-for-service``, registered handlers) and adjusts confidences with the
    outcomes the ledger recorded for this fingerprint. Nothing is executed here.

    Returns (XCom) ``{"plan", "markdown"}``: the
    :class:`~qubinode_recovery_provider.models.RecoveryPlan` and its Markdown rendering.

    :param diagnosis_task_id: the task whose XCom holds the diagnosis (a
        :class:`~qubinode_recovery_provider.operators.DiagnoseFailureOperator`)
    :param conn_id: the Airflow REST API connection ``retry-from-failure`` will use; default
        ``[qubinode_recovery] recovery_conn_id``
    """

    template_fields: Sequence[str] = ("diagnosis_task_id", "conn_id")
    ui_color = "#e8f1fb"

    def __init__(
        self, *, diagnosis_task_id: str = "diagnose", conn_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.diagnosis_task_id = diagnosis_task_id
        self.conn_id = conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from qubinode_recovery_provider.operators.common import load_diagnosis, pull, runtime_for
        from qubinode_recovery_provider.output_limits import OutputLimits, ledger_hint
        from qubinode_recovery_provider.recovery.render import plan_to_dict, plan_to_markdown

        try:
            diagnosis, task = load_diagnosis(pull(context, self.diagnosis_task_id))
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        rt = runtime_for(self.conn_id)
        plan = rt.planner().plan_recovery(diagnosis, task)
        rt.ledger.record_plan(plan)
        best = plan.recommended
        self.log.info(
            "Plan for %s: %d option(s); recommended: %s",
            plan.fingerprint,
            len(plan.options),
            f"{best.type.value} {best.title!r} (action {best.action}, automatic {best.automatic})"
            if best
            else "none",
        )
        limits, hint = OutputLimits.configured(), ledger_hint(plan.fingerprint)
        markdown = plan_to_markdown(plan, diagnosis=diagnosis, limits=limits, more_hint=hint)
        return {"plan": plan_to_dict(plan), "markdown": markdown}


__all__ = ["PlanRecoveryOperator"]
