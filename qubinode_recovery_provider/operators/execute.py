"""``ExecuteRecoveryOperator``: carry out the plan's recommended option, exactly once, within the policy."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from qubinode_recovery_provider.models import RecoveryAttempt, RecoveryPlan, TaskConfig


class ExecuteRecoveryOperator(BaseOperator):
    """Run the recommended option of the plan through the core
    :class:`~qubinode_recovery_provider.recovery.RecoveryExecutor`: only allowlisted actions with typed
    arguments, claimed in the ledger under an idempotency key, bounded by the circuit breaker, as a dry
    run when asked.

    ``retry-from-failure`` clears the failed task instances of the failed run through the Airflow REST
    API v2 (``only_failed``, with their downstream tasks, ``dry_run: false``), so the run resumes from
    the failed task and keeps its finished upstream work. When the plan asks for a delay before the
    retry, the task defers until the delay since the failure has passed (no worker slot is held).

    Outcome: the attempt is pushed as XCom ``attempt`` (and returned). The task succeeds when the action
    ran and succeeded, is skipped when nothing ran on purpose (a dry run, or another recovery run
    claimed the same attempt), and fails (no retries: the attempt is claimed) when the action failed or
    was refused.

    :param enable_auto_recovery: this run's switch (templated)
    :param dry_run: record what would run instead of running it (templated; kept as ``dry_run_switch``,
        since ``dry_run()`` is a method of every operator)
    :param approval_task_id: an approval task; its ``Approve`` answer lets the option run although the
        policy asks for an approval or this run's or the DAG's switch is off (the decision's rule: the
        global switch still wins)
    :param diagnosis_task_id: the diagnose task
    :param plan_task_id: the plan task
    :param conn_id: the Airflow REST API connection; default ``[qubinode_recovery] recovery_conn_id``
    :param max_delay_seconds: wait at most this long before a delayed retry (None: the plan's delay)
    """

    template_fields: Sequence[str] = ("enable_auto_recovery", "dry_run_switch", "conn_id")
    ui_color = "#e3f6e5"

    def __init__(
        self,
        *,
        enable_auto_recovery: bool | str | None = True,
        dry_run: bool | str | None = False,
        approval_task_id: str | None = None,
        diagnosis_task_id: str = "diagnose",
        plan_task_id: str = "plan",
        conn_id: str | None = None,
        max_delay_seconds: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("retries", 0)
        super().__init__(**kwargs)
        self.enable_auto_recovery = enable_auto_recovery
        # not ``self.dry_run``: that is BaseOperator.dry_run(), which renders the template fields
        self.dry_run_switch = dry_run
        self.approval_task_id = approval_task_id
        self.diagnosis_task_id = diagnosis_task_id
        self.plan_task_id = plan_task_id
        self.conn_id = conn_id
        self.max_delay_seconds = max_delay_seconds

    def execute(self, context: Context) -> dict[str, Any]:
        plan, task, approved = self._inputs(context)
        delay, wait = self._delay(context, plan)
        if wait > 0:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.log.info("The plan retries %ss after the failure: deferring for %ss", delay, wait)
            self.defer(
                trigger=DateTimeTrigger(moment=datetime.now(UTC) + timedelta(seconds=wait)),
                method_name="execute_after_delay",
            )
        return self._execute(context, plan, task, approved)

    def execute_after_delay(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Resume after the delay the plan asked for."""
        return self._execute(context, *self._inputs(context))

    # --- steps -----------------------------------------------------------------------------------

    def _inputs(self, context: Context) -> tuple[RecoveryPlan, TaskConfig, bool]:
        from airflow.sdk.exceptions import AirflowFailException

        from qubinode_recovery_provider.operators import common as c

        try:
            _, task = c.load_diagnosis(c.pull(context, self.diagnosis_task_id))
            plan = c.load_plan(c.pull(context, self.plan_task_id))
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        approved = c.approval_choice(c.approval(context, self.approval_task_id)) == "Approve"
        return plan, task, approved

    def _delay(self, context: Context, plan: RecoveryPlan) -> tuple[int, int]:
        """The plan's delay before the retry, and how much of it is left: counted from the recovery
        run's start (right after the failure, when the notifier started it)."""
        from qubinode_recovery_provider.operators.common import switch
        from qubinode_recovery_provider.recovery.policy import RecoveryPolicy

        option = plan.recommended
        if option is None or RecoveryPolicy.from_config().is_dry_run(switch(self.dry_run_switch)):
            return 0, 0
        delay = int((option.action_args or {}).get("delay_seconds") or 0)
        if self.max_delay_seconds is not None:
            delay = min(delay, max(0, int(self.max_delay_seconds)))
        if delay <= 0:
            return 0, 0
        started = getattr(context.get("dag_run"), "start_date", None) or datetime.now(UTC)
        elapsed = (datetime.now(UTC) - started).total_seconds()
        return delay, max(0, int(delay - elapsed))

    def _execute(
        self, context: Context, plan: RecoveryPlan, task: TaskConfig, approved: bool
    ) -> dict[str, Any]:
        from qubinode_recovery_provider.operators import common as c
        from qubinode_recovery_provider.recovery.executor import CallSettings, RecoveryExecutor
        from qubinode_recovery_provider.recovery.policy import dag_auto_recovery

        rt = c.runtime_for(self.conn_id)
        executor = RecoveryExecutor(rt.ledger, rt.registry, rt.policy())
        settings = CallSettings(
            host=task.host,
            dag_auto_recovery=dag_auto_recovery(task.params, task.tags),
            auto_recovery=c.switch(self.enable_auto_recovery),
            dry_run=c.switch(self.dry_run_switch),
            approved=approved,
        )
        attempt = executor.execute(plan, settings)
        result = attempt.model_dump(mode="json")
        result["approved"] = approved
        context["ti"].xcom_push(key=c.ATTEMPT_KEY, value=result)
        self.log.info("Recovery attempt %s: %s - %s", attempt.action, attempt.outcome.value, attempt.detail)
        self._finish(attempt)
        return result

    def _finish(self, attempt: RecoveryAttempt) -> None:
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

        from qubinode_recovery_provider.models import AttemptOutcome

        if attempt.outcome in (AttemptOutcome.DRY_RUN, AttemptOutcome.SKIPPED):
            raise AirflowSkipException(f"nothing ran ({attempt.outcome.value}): {attempt.detail}")
        if attempt.outcome is not AttemptOutcome.SUCCEEDED:
            raise AirflowFailException(f"recovery {attempt.outcome.value}: {attempt.detail}")


__all__ = ["ExecuteRecoveryOperator"]
