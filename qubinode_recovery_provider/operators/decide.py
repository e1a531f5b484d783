"""``RecoveryDecisionOperator``: branch to automatic execution, a human approval, or escalation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseBranchOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class RecoveryDecisionOperator(BaseBranchOperator):
    """Follow one of three branches for the plan's recommended option (rules:
    :mod:`qubinode_recovery_provider.recovery.decision`).

    Pushes the XCom ``decision`` (``route``, ``reasons``, ``dry_run``, ``option_index``) and
    ``approval_body``: the Markdown an approval task shows (the dry run of the option with its risk,
    rollback and success criteria, then the whole plan).

    :param auto_task_id: the branch followed when the option may run unattended (or as a dry run)
    :param approval_task_id: the branch followed when a person must approve
    :param escalate_task_id: the branch followed when nothing may run automatically
    :param enable_auto_recovery: this run's switch (templated; bool or its spelling)
    :param dry_run: this run's dry-run switch (templated; kept as ``dry_run_switch``, since ``dry_run()``
        is a method of every operator)
    :param diagnosis_task_id: the diagnose task
    :param plan_task_id: the plan task
    :param conn_id: the Airflow REST API connection of ``retry-from-failure``
    """

    template_fields: Sequence[str] = ("enable_auto_recovery", "dry_run_switch", "conn_id")
    ui_color = "#fff4d6"

    def __init__(
        self,
        *,
        auto_task_id: str,
        approval_task_id: str,
        escalate_task_id: str,
        enable_auto_recovery: bool | str | None = True,
        dry_run: bool | str | None = False,
        diagnosis_task_id: str = "diagnose",
        plan_task_id: str = "plan",
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.auto_task_id = auto_task_id
        self.approval_task_id = approval_task_id
        self.escalate_task_id = escalate_task_id
        self.enable_auto_recovery = enable_auto_recovery
        # not ``self.dry_run``: that is BaseOperator.dry_run(), which renders the template fields
        self.dry_run_switch = dry_run
        self.diagnosis_task_id = diagnosis_task_id
        self.plan_task_id = plan_task_id
        self.conn_id = conn_id

    def choose_branch(self, context: Context) -> str:
        from airflow.sdk.exceptions import AirflowFailException

        from qubinode_recovery_provider.operators import common as c
        from qubinode_recovery_provider.recovery import decision as d
        from qubinode_recovery_provider.recovery.policy import dag_auto_recovery

        try:
            diagnosis, task = c.load_diagnosis(c.pull(context, self.diagnosis_task_id))
            plan = c.load_plan(c.pull(context, self.plan_task_id))
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        rt = c.runtime_for(self.conn_id)
        decision = d.decide(
            plan,
            rt.registry,
            rt.policy(),
            ledger=rt.ledger,
            run_auto_recovery=c.switch(self.enable_auto_recovery),
            dag_auto_recovery=dag_auto_recovery(task.params, task.tags),
            dry_run=c.switch(self.dry_run_switch),
            host=task.host,
        )
        self.log.info("Decision: %s", decision.summary)
        ti = context["ti"]
        ti.xcom_push(key=c.DECISION_KEY, value=decision.to_dict())
        if decision.route == d.APPROVAL:
            ti.xcom_push(key=c.APPROVAL_BODY_KEY, value=d.approval_markdown(plan, decision, diagnosis))
        return {
            d.AUTO: self.auto_task_id,
            d.APPROVAL: self.approval_task_id,
            d.ESCALATE: self.escalate_task_id,
        }[decision.route]


__all__ = ["RecoveryDecisionOperator"]
