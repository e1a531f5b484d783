"""Qubinode failure recovery: diagnose a failed task, plan, decide, (approve), execute, verify, escalate,
report.

Started for each new incident by the ``RecoveryNotifier`` failure callback (the run's conf names the
failed task and the incident's fingerprint), or by a person from the trigger form:

1. **diagnose** -- checks the input (the DAG and the run must exist, the message must not be empty)
   and diagnoses the failure; a run started by the notifier reuses the diagnosis it recorded.
2. **plan** -- ranked recovery options (retry from the failed task, wait for a service, manual fix,
   rollback, skip, escalate), recorded in the ledger.
3. **decide** -- *auto_execute* when the recommended option is an allowlisted action within the policy
   (or a dry run), *approve* when a person must say yes (risk, confidence, or automatic recovery turned
   off for this run or the failed DAG), *escalate_only* when nothing may run automatically.
4. **approve** -- a Human-in-the-loop approval in the Airflow UI ("Required actions") showing the dry
   run of the option with its risk, rollback and the whole plan. Reject escalates, naming who rejected;
   no answer within ``[qubinode_recovery] approval_timeout_minutes`` (24 hours) applies the default,
   Reject, and escalates saying nobody answered.
5. **execute** -- runs the option once. "Retry from failure" clears the failed task instances of the
   failed run through the REST API v2, so the run resumes from the failed task and keeps its finished
   upstream work.
6. **verify** -- waits (reschedule mode) until the resumed run succeeds or fails.
7. **escalate** -- when verification failed, the action failed, the approval was rejected or no safe
   option exists: an entry in the ledger's escalation outbox plus a Markdown report.
8. **report** -- the outcome in the ledger (a recovered incident becomes resolved), a Markdown summary
   in ``<state_dir>/reports/``, the outcome as this run's note and a note on the failed task instance.

The trigger form refuses a run without a DAG id or a failure message, and ids that are too long or
hold characters Airflow ids cannot have.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param, TriggerRule

from qubinode_recovery_provider import config
from qubinode_recovery_provider.operators import (
    DiagnoseFailureOperator,
    EscalateOperator,
    ExecuteRecoveryOperator,
    PlanRecoveryOperator,
    RecoveryApprovalOperator,
    RecoveryDecisionOperator,
    RecoveryReportOperator,
)
from qubinode_recovery_provider.sensors.recovery import RecoveredRunSensor


def approval_timeout() -> timedelta:
    """``[qubinode_recovery] approval_timeout_minutes`` (24 hours when it is malformed)."""
    try:
        return timedelta(minutes=max(0.1, config.get_float("approval_timeout_minutes")))
    except config.ConfigError:
        return timedelta(hours=24)


#: Airflow's id characters (dag_id, task_id); a run id may also hold ``~:+``.
ID_PATTERN = r"^[A-Za-z0-9_.-]+$"
OPTIONAL_ID_PATTERN = r"^[A-Za-z0-9_.-]*$"
OPTIONAL_RUN_ID_PATTERN = r"^[A-Za-z0-9_.~:+-]*$"


def build() -> DAG:
    """The ``qubinode_failure_recovery`` DAG, built with the configuration as it is now."""
    with DAG(
        dag_id="qubinode_failure_recovery",
        dag_display_name="Qubinode failure recovery",
        description="Diagnose, plan, approve, execute, verify and escalate the recovery of a failed task",
        schedule=None,
        start_date=datetime(2025, 1, 1),
        catchup=False,
        is_paused_upon_creation=False,
        max_active_runs=16,
        tags=["qubinode", "recovery"],
        doc_md=__doc__,
        default_args={"owner": "qubinode", "retries": 0},
        params={
            "failed_dag_id": Param(
                type="string",
                minLength=1,
                maxLength=250,
                pattern=ID_PATTERN,
                title="Failed DAG id",
                description="The DAG whose task failed (letters, digits, _ . -; at most 250).",
            ),
            "failed_task_id": Param(
                "",
                type=["string", "null"],
                maxLength=250,
                pattern=OPTIONAL_ID_PATTERN,
                title="Failed task id",
                description="The task that failed. Optional, but needed to resume the run from it.",
            ),
            "failed_run_id": Param(
                "",
                type=["string", "null"],
                maxLength=250,
                pattern=OPTIONAL_RUN_ID_PATTERN,
                title="Failed run id",
                description="The run the task failed in (for example manual__2025-01-01T00:00:00+00:00). "
                "Optional, but needed to resume the run.",
            ),
            "failure_message": Param(
                type="string",
                minLength=1,
                maxLength=100_000,
                format="multiline",
                title="Failure message or log excerpt",
                description="The error message, or the last lines of the failed task's log.",
            ),
            "enable_auto_recovery": Param(
                True,
                type="boolean",
                title="Enable auto recovery",
                description="Off: a person must approve any recovery action in the UI.",
            ),
            "dry_run": Param(
                False,
                type="boolean",
                title="Dry run",
                description="Plan and record what would run, without running it.",
            ),
        },
    ) as dag:
        diagnose = DiagnoseFailureOperator(
            task_id="diagnose",
            failed_dag_id="{{ params.failed_dag_id }}",
            failed_task_id="{{ params.failed_task_id }}",
            failed_run_id="{{ params.failed_run_id }}",
            failure_message="{{ params.failure_message }}",
            fingerprint="{{ (dag_run.conf or {}).get('fingerprint') or '' }}",
            failed_try_number="{{ (dag_run.conf or {}).get('failed_try_number') or '' }}",
        )
        plan = PlanRecoveryOperator(task_id="plan")
        decide = RecoveryDecisionOperator(
            task_id="decide",
            auto_task_id="auto_execute",
            approval_task_id="approve",
            escalate_task_id="escalate_only",
            enable_auto_recovery="{{ params.enable_auto_recovery }}",
            dry_run="{{ params.dry_run }}",
        )
        auto_execute = EmptyOperator(task_id="auto_execute")
        escalate_only = EmptyOperator(task_id="escalate_only")
        approve = RecoveryApprovalOperator(
            task_id="approve",
            subject="Approve the recovery of {{ params.failed_dag_id }}"
            "{{ '.' ~ params.failed_task_id if params.failed_task_id else '' }}?",
            body="{{ ti.xcom_pull(task_ids='decide', key='approval_body') }}",
            defaults="Reject",
            response_timeout=approval_timeout(),
        )
        execute = ExecuteRecoveryOperator(
            task_id="execute",
            approval_task_id="approve",
            enable_auto_recovery="{{ params.enable_auto_recovery }}",
            dry_run="{{ params.dry_run }}",
            trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        )
        verify = RecoveredRunSensor(
            task_id="verify",
            target_dag_id="{{ params.failed_dag_id }}",
            target_run_id="{{ params.failed_run_id }}",
            target_task_ids="{{ params.failed_task_id or '' }}",
            mode="reschedule",
            poke_interval=10,
            timeout=6 * 3600,
        )
        escalate = EscalateOperator(task_id="escalate", trigger_rule=TriggerRule.ALL_DONE)
        report = RecoveryReportOperator(task_id="report", trigger_rule=TriggerRule.ALL_DONE)

        diagnose >> plan >> decide >> [auto_execute, approve, escalate_only]
        [auto_execute, approve] >> execute >> verify
        [escalate_only, verify] >> escalate >> report
    return dag
