"""``RecoveryNotifier``: the failure callback that diagnoses, records and hands over to recovery.

::

    from qubinode_recovery_provider.notifications import RecoveryNotifier

    BashOperator(..., on_failure_callback=RecoveryNotifier(), on_retry_callback=RecoveryNotifier())
    DAG(..., default_args={"on_failure_callback": RecoveryNotifier()})

It runs where Airflow runs the callback: in the worker right after the task failed, or in the DAG
processor for a task killed from outside (no exception in the context) and for DAG-level callbacks. The
work runs in a daemon thread that the callback waits for at most ``budget_seconds``; whatever happens
(API server down, ledger locked, a hanging probe, a log built to be slow to read), the callback returns
within the budget and raises nothing, so the task's own outcome never changes. When the budget runs out
before the incident was written, the callback's own thread spools what is known by then and the worker
stops; the failed attempt is recorded exactly once either way (its idempotency key is the task instance
and try number).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from airflow.sdk.bases.notifier import BaseNotifier

from qubinode_recovery_provider.utils import task_log_capture

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

    from qubinode_recovery_provider.notifications.failure_path import FailureReport, NotificationOutcome

log = logging.getLogger(__name__)

#: The DAG started for each new incident.
RECOVERY_DAG_ID = "qubinode_failure_recovery"

#: Time kept back from the budget for the rescue step after the thread missed it.
RESCUE_RESERVE = 0.25


class RecoveryNotifier(BaseNotifier):
    """Diagnose a failed task, record the incident and start a recovery run for each new incident.

    :param budget_seconds: the most time the callback takes; default
        ``[qubinode_recovery] notifier_budget_seconds``.
    :param trigger_recovery: start ``recovery_dag_id`` runs for new incidents (off: only record).
    :param recovery_dag_id: the recovery DAG (templated).
    :param conn_id: the Airflow connection of the REST API; default
        ``[qubinode_recovery] recovery_conn_id``.
    :param trigger_via: ``auto`` (the connection if it exists, else the Task SDK inside a task),
        ``api`` or ``task_sdk``.
    :param collect_context: probe services, resources and network reachability for the diagnosis.
    :param log_tail_lines: lines of the attempt's log to read; default ``[qubinode_recovery]
        log_tail_lines``.
    :param ledger_url: the ledger's SQLAlchemy URL; default the configured ledger.
    """

    template_fields = ("recovery_dag_id",)

    def __init__(
        self,
        *,
        budget_seconds: float | None = None,
        trigger_recovery: bool = True,
        recovery_dag_id: str = RECOVERY_DAG_ID,
        conn_id: str | None = None,
        trigger_via: str = "auto",
        collect_context: bool = True,
        log_tail_lines: int | None = None,
        ledger_url: str | None = None,
    ) -> None:
        super().__init__()
        task_log_capture.ensure_installed()  # keep this task's log lines in memory (evidence)
        from qubinode_recovery_provider.notifications.run_starter import VIA_CHOICES

        if trigger_via not in VIA_CHOICES:
            raise ValueError(f"trigger_via must be one of {', '.join(VIA_CHOICES)}, got {trigger_via!r}")
        if budget_seconds is not None and budget_seconds <= 0:
            raise ValueError(f"budget_seconds must be positive, got {budget_seconds!r}")
        self.budget_seconds = budget_seconds
        self.trigger_recovery = trigger_recovery
        self.recovery_dag_id = recovery_dag_id
        self.conn_id = conn_id
        self.trigger_via = trigger_via
        self.collect_context = collect_context
        self.log_tail_lines = log_tail_lines
        self.ledger_url = ledger_url
        self.last_outcome: NotificationOutcome | None = None

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(recovery_dag_id={self.recovery_dag_id!r}, trigger_via={self.trigger_via!r})"

    def __call__(self, *args: object) -> None:
        """Run as a callback; nothing escapes (``BaseNotifier`` renders templates outside ``notify``)."""
        try:
            super().__call__(*args)
        except Exception as exc:
            log.warning("qubinode RecoveryNotifier failed before it could run: %s", exc, exc_info=True)

    def render_template_fields(self, context: Context, jinja_env: object = None) -> None:
        """Render ``recovery_dag_id``; a context that cannot render keeps the value as given.

        :param context: the callback context.
        :param jinja_env: the Jinja environment (default: the DAG's).
        """
        try:
            super().render_template_fields(context, jinja_env)  # type: ignore[arg-type]
        except Exception as exc:
            log.warning("qubinode RecoveryNotifier: templates not rendered: %s", exc)

    def notify(self, context: Context) -> None:
        """Handle one failure within the budget; never raises.

        :param context: the callback context (task or DAG level, with or without ``exception``).
        """
        from qubinode_recovery_provider.notifications.failure_path import NotificationOutcome

        started = time.monotonic()
        outcome = NotificationOutcome()
        try:
            self._notify(context, started, outcome)
        except BaseException as exc:  # never let the callback change the task's fate
            outcome.errors.append(f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, Exception):
                raise
        finally:
            outcome.elapsed_seconds = time.monotonic() - started
            self.last_outcome = outcome
            _log_outcome(outcome)

    def budget(self) -> float:
        """The time budget in seconds: ``budget_seconds`` (else ``[qubinode_recovery]
        notifier_budget_seconds``), at most three quarters of Airflow's ``[core] task_success_overtime``.

        Airflow 3 runs the failure callback after the task reported its state; from then on the
        supervisor gives the process ``task_success_overtime`` (20 s by default) before it sends SIGTERM
        and, 5 s later, SIGKILL. A notifier still working then would lose the incident.
        """
        if self.budget_seconds is not None:
            configured = float(self.budget_seconds)
        else:
            from qubinode_recovery_provider import config

            try:
                configured = max(0.5, config.get_float("notifier_budget_seconds"))
            except config.ConfigError:
                configured = float(config.OPTIONS["notifier_budget_seconds"].default)
        return min(configured, overtime_cap())

    def _notify(self, context: Context, started: float, outcome: NotificationOutcome) -> None:
        from qubinode_recovery_provider.deadline import Deadline
        from qubinode_recovery_provider.notifications.failure_path import (
            FailureReport,
            ReportSettings,
        )
        from qubinode_recovery_provider.notifications.pending_runs import TriggerOutbox
        from qubinode_recovery_provider.notifications.run_starter import RecoveryRunStarter
        from qubinode_recovery_provider.utils.task_failure import log_tail_lines

        if _not_a_failure(context):
            outcome.stage = "skipped: the task did not fail (used as a success callback?)"
            return
        budget = self.budget()
        deadline = Deadline(max(0.1, budget - RESCUE_RESERVE - (time.monotonic() - started)))
        settings = ReportSettings(
            recovery_dag_id=self.recovery_dag_id,
            trigger_recovery=self.trigger_recovery,
            collect_context=self.collect_context,
            log_tail_lines=log_tail_lines(self.log_tail_lines),
            ledger_url=self.ledger_url,
        )
        report = FailureReport(
            context,
            settings,
            RecoveryRunStarter(conn_id=self.conn_id, via=self.trigger_via),
            TriggerOutbox.from_config(),
            deadline,
            outcome,
        )
        worker = threading.Thread(target=report.run, name="qubinode-recovery-notifier", daemon=True)
        worker.start()
        try:
            _rescue_ready()
            worker.join(timeout=deadline.remaining())
        except BaseException as exc:
            # a signal handler raised while this thread waited: the supervisor's SIGTERM runs the
            # operator's on_kill here (BashOperator's raises ProcessLookupError when its command is gone).
            # Keep the failure (spooled under its idempotency key) before anything else happens.
            outcome.errors.append(f"interrupted at stage {outcome.stage}: {type(exc).__name__}: {exc}")
            _rescue(report, outcome)
            if not isinstance(exc, Exception):
                raise
            return
        if worker.is_alive():
            outcome.timed_out = True
            outcome.errors.append(f"budget of {budget:g}s ran out at stage {outcome.stage}")
            _rescue(report, outcome)


#: Share of Airflow's ``[core] task_success_overtime`` the notifier may use (see ``budget``).
OVERTIME_SHARE = 0.75


def overtime_cap() -> float:
    """Seconds the notifier may take before Airflow's supervisor stops the task process: three quarters
    of ``[core] task_success_overtime`` (infinite when Airflow's configuration cannot be read)."""
    try:
        from airflow.configuration import conf

        overtime = conf.getfloat("core", "task_success_overtime", fallback=20.0)
    except Exception:
        return float("inf")
    return max(0.5, overtime * OVERTIME_SHARE)


def _not_a_failure(context: Context) -> bool:
    """True for a task callback of a task that succeeded or was skipped (no exception, such a state)."""
    if "exception" not in context or context.get("exception") is not None:
        return False
    state = getattr(context.get("ti"), "state", None)
    return str(getattr(state, "value", state)) in {"success", "skipped"}


def _rescue_ready() -> None:
    """Import what :meth:`FailureReport.rescue` writes with (the ledger's module, SQLAlchemy, the spool)
    while the worker runs: a rescue at the deadline then spends its reserve writing, not importing."""
    from qubinode_recovery_provider.store import ledger, spool, url  # noqa: F401


def _rescue(report: FailureReport, outcome: NotificationOutcome) -> None:
    try:
        outcome.errors.append(report.rescue())
    except Exception as exc:
        outcome.errors.append(f"rescue failed: {type(exc).__name__}: {exc}")


def _log_outcome(outcome: NotificationOutcome) -> None:
    from qubinode_recovery_provider.redaction import redact, strip_control
    from qubinode_recovery_provider.utils.log_groups import log_visibly

    level = logging.WARNING if outcome.errors or outcome.timed_out else logging.INFO
    if not outcome.stage.startswith("skipped"):
        log_visibly(log, level, "%s", redact(strip_control(outcome.headline())))
    log.log(level, "qubinode RecoveryNotifier: %s", redact(strip_control(outcome.summary())))


__all__ = ["RecoveryNotifier"]
