"""``EscalateOperator``: hand the incident to a person when no safe automatic recovery fixed it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class EscalateOperator(BaseOperator):
    """Escalate the incident through the escalation layer
    (:func:`~qubinode_recovery_provider.escalation.escalate`): once per fingerprint and failed run, into
    the ledger's escalation outbox, with a Markdown report in ``<state_dir>/reports/``.

    With ``reason`` the incident is escalated for that reason. Without, the operator reads the recovery
    run (it is meant to run with ``trigger_rule="all_done"``) and escalates when the decision was
    "escalate only", the approval was rejected (or timed out), the execution failed, or the verification
    failed; otherwise it is skipped: there is nothing to escalate.

    With ``[qubinode_recovery] github_repository`` set, it then delivers the incident's outbox entries to
    its GitHub issue (through the ``github_conn_id`` connection); what cannot be delivered now stays in
    the outbox for the shadow scan's ``deliver_escalations`` task or ``qubinode-recovery escalations
    deliver``.

    Returns (XCom) ``{"reasons", "first", "outbox_id", "report_path", "reference", "detail", "issue_url",
    "github"}``.

    :param reason: escalate for this reason (templated)
    :param diagnosis_task_id: the diagnose task
    :param plan_task_id: the plan task
    :param decision_task_id: the decision task
    :param approval_task_id: the approval task
    :param execute_task_id: the execute task
    :param verify_task_id: the verification sensor
    """

    template_fields: Sequence[str] = ("reason",)
    ui_color = "#fde2e1"

    def __init__(
        self,
        *,
        reason: str | None = None,
        diagnosis_task_id: str = "diagnose",
        plan_task_id: str = "plan",
        decision_task_id: str | None = "decide",
        approval_task_id: str | None = "approve",
        execute_task_id: str | None = "execute",
        verify_task_id: str | None = "verify",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.reason = reason
        self.diagnosis_task_id = diagnosis_task_id
        self.plan_task_id = plan_task_id
        self.decision_task_id = decision_task_id
        self.approval_task_id = approval_task_id
        self.execute_task_id = execute_task_id
        self.verify_task_id = verify_task_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowSkipException

        from qubinode_recovery_provider import runtime
        from qubinode_recovery_provider.escalation import escalate
        from qubinode_recovery_provider.hooks.github import deliver_pending
        from qubinode_recovery_provider.operators import common as c

        try:
            diagnosis, task = c.load_diagnosis(c.pull(context, self.diagnosis_task_id))
        except ValueError as exc:
            raise AirflowSkipException(f"nothing to escalate: {exc}") from None
        reason = c.text_or_none(self.reason)
        reasons = [reason] if reason else self.collect_reasons(context)
        if not reasons:
            raise AirflowSkipException("nothing to escalate: the recovery succeeded or nothing was due")
        plan_payload = c.pull(context, self.plan_task_id)
        rt = runtime.current()
        plan = (
            c.load_plan(plan_payload)
            if plan_payload
            else rt.planner(learn=False).plan_recovery(diagnosis, task)
        )
        result = escalate(
            rt.ledger, plan, reasons, diagnosis=diagnosis, details=self._details(context, reasons, task)
        )
        self.log.info("Escalated: %s", result.detail)
        delivery = deliver_pending(rt.ledger, plan.fingerprint)
        issue_url = _issue_url(rt.ledger, plan.fingerprint) if delivery is not None else None
        if delivery is not None:
            self.log.info("GitHub: %s; issue %s", delivery.to_dict(), issue_url or "not filed yet")
        return {
            "reasons": reasons,
            **result.to_dict(),
            "issue_url": issue_url,
            "github": delivery.to_dict() if delivery is not None else None,
        }

    def collect_reasons(self, context: Context) -> list[str]:
        """Why this recovery run escalates, read from its decision, approval, execution and verification."""
        from qubinode_recovery_provider.operators import common as c

        reasons: list[str] = []
        decision = c.pull(context, self.decision_task_id, c.DECISION_KEY) or {}
        if decision.get("route") == "escalate":
            reasons += [str(r) for r in decision.get("reasons") or []] or ["no safe automatic option"]
        answer = c.approval(context, self.approval_task_id)
        if answer and answer.get("timed_out"):
            reasons.append(
                "nobody answered the approval request in time; its default "
                f"({c.approval_choice(answer) or 'no answer'}) applied and nothing ran"
            )
        elif c.approval_choice(answer) == "Reject":
            by = c.approver(answer)
            reasons.append("the recovery was rejected in the Airflow UI" + (f" by {by}" if by else ""))
        watched = [t for t in (self.approval_task_id, self.execute_task_id, self.verify_task_id) if t]
        states = c.run_task_states(context, watched) if watched else {}
        if self.approval_task_id and states.get(self.approval_task_id) == "failed":
            reasons.append("the approval step failed (see its log): nothing ran")
        if self.execute_task_id and states.get(self.execute_task_id) in c.FAILED_STATES:
            attempt = c.pull(context, self.execute_task_id, c.ATTEMPT_KEY) or {}
            reasons.append(
                f"the recovery action {attempt.get('action') or ''} did not succeed: "
                f"{attempt.get('detail') or 'see the execute task log'}".replace("  ", " ")
            )
        if self.verify_task_id and states.get(self.verify_task_id) == "failed":
            verification = c.pull(context, self.verify_task_id, c.VERIFICATION_KEY) or {}
            reasons.append(
                str(verification.get("reason") or "the failed run did not recover (verification failed)")
            )
        return reasons

    def _details(self, context: Context, reasons: list[str], task: Any = None) -> str:
        from qubinode_recovery_provider.escalation.reports import airflow_links

        ti = context["ti"]
        links = airflow_links(
            getattr(task, "dag_id", None),
            getattr(task, "run_id", None),
            getattr(task, "task_id", None),
            getattr(task, "try_number", None),
            recovery=(ti.dag_id, ti.run_id),
        )
        lines = [
            "## What the recovery run did",
            "",
            f"- Recovery run: `{ti.dag_id}` / `{ti.run_id}`",
            *(f"- {reason}" for reason in reasons),
            *links,
        ]
        return "\n".join(lines)


class DeliverEscalationsOperator(BaseOperator):
    """Deliver the escalation outbox to GitHub issues (:func:`~qubinode_recovery_provider.hooks.github.
    deliver_pending`): what an outage or a rate limit left behind, and the shadow scan's findings. Does
    nothing without ``[qubinode_recovery] github_repository``. Never fails: what cannot be delivered
    stays in the outbox for the next run.

    Returns (XCom) the delivery report, or ``{"skipped": reason}``.
    """

    ui_color = "#fde2e1"

    def execute(self, context: Context) -> dict[str, Any]:
        from qubinode_recovery_provider import runtime
        from qubinode_recovery_provider.hooks.github import deliver_pending

        report = deliver_pending(runtime.current().ledger)
        if report is None:
            return {"skipped": "no GitHub repository configured ([qubinode_recovery] github_repository)"}
        self.log.info("Escalation outbox delivered to GitHub: %s", report.to_dict())
        return report.to_dict()


def _issue_url(ledger: Any, fingerprint: str) -> str | None:
    try:
        record = ledger.escalation_issue(fingerprint)
    except Exception:
        return None
    return record["url"] if record else None


__all__ = ["DeliverEscalationsOperator", "EscalateOperator"]
