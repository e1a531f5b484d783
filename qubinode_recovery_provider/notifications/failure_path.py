"""What the notifier does with one failure: diagnose, record, and start a recovery run when it is new.

:class:`FailureReport` runs the steps in order and notes how far it got in a :class:`NotificationOutcome`,
which the notifier reads even when the budget runs out halfway:

1. read the attempt's log tail and build the redacted :class:`FailureEvent`;
2. collect the host's context (bounded by a share of the budget);
3. diagnose;
4. record the incident in the ledger (spooled to disk when the ledger is locked or down);
5. ask the core whether this failure starts a recovery run
   (:func:`~qubinode_recovery_provider.recovery.intake.failure_starts_run`, with the failed DAG's switch
   read from the context), record the request in the outbox as pending, send it, and mark it sent; a
   request that cannot be sent stays pending and is delivered later (:func:`deliver_pending_triggers`).

The steps run in a worker thread that the notifier waits for until its deadline. When time runs out first,
the notifier's own thread *rescues* the failure (:meth:`FailureReport.rescue`): it spools what is known by
then (at worst an unanalysed diagnosis with the exception text) under the attempt's idempotency key, and
the worker stops at its next step. Whichever of the two writes lands first counts; the other is a
duplicate of the same attempt, so a failure is recorded exactly once.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.categories import utcnow
from qubinode_recovery_provider.deadline import MIN_STEP_SECONDS, Deadline
from qubinode_recovery_provider.notifications.pending_runs import (
    FAILED,
    MAX_DELIVERY_ATTEMPTS,
    PENDING,
    SENT,
    TriggerOutbox,
    TriggerRecord,
)
from qubinode_recovery_provider.notifications.recovery import RECOVERY_DAG_ID

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import Diagnosis, FailureEvent, Incident
    from qubinode_recovery_provider.notifications.run_starter import RecoveryRunStarter, TriggerResult
    from qubinode_recovery_provider.recovery.policy import RecoveryPolicy
    from qubinode_recovery_provider.store import Ledger
    from qubinode_recovery_provider.utils.task_failure import LogTail

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
#: Shares of the budget: context probes, ledger lock wait.
CONTEXT_SHARE = 0.35
LEDGER_SHARE = 0.3
#: Lines of the log tail the host's context carries along.
CONTEXT_LOG_LINES = 50
#: psutil's CPU sample inside a failing task: half the collector's default, the task is waiting.
CPU_SAMPLE_SECONDS = 0.05
RESCUE_REASON = "the notifier's time budget ran out before the analysis"
#: Pending requests of other incidents delivered after a successful request, at most.
REPLAY_AFTER_SUCCESS = 3


@dataclass
class NotificationOutcome:
    """How far the notifier got, and what it decided (also what it logs)."""

    stage: str = "start"
    fingerprint: str | None = None
    root_cause: str | None = None
    confidence: float | None = None
    text_source: str = ""
    incident_id: int | None = None
    occurrences: int | None = None
    incident_recorded: bool = False
    incident_spooled: bool = False
    #: what became of the failure: written, duplicate, spooled, lost (see ``store.ledger``).
    record_status: str = ""
    new_incident: bool = False
    trigger_reason: str = ""
    triggered: bool = False
    trigger_pending: bool = False
    recovery_run_id: str | None = None
    errors: list[str] = field(default_factory=list)
    elapsed_seconds: float = 0.0
    timed_out: bool = False

    def headline(self) -> str:
        """A short line for the top of the task log: the cause, what was recorded, what happens next."""
        if self.root_cause is None:
            cause = "qubinode: not diagnosed"
        elif self.confidence is not None:
            cause = f"qubinode: {self.root_cause} ({self.confidence:.2f})"
        else:
            cause = f"qubinode: {self.root_cause}"
        recorded = {
            "written": "recorded",
            "duplicate": "recorded before",
            "spooled": "spooled (the ledger is written later)",
            "lost": "NOT RECORDED",
        }.get(self.record_status or "", "not recorded")
        parts = [cause, f"incident {recorded}"]
        if self.triggered and self.recovery_run_id:
            parts.append(f"recovery run {self.recovery_run_id} started")
        elif self.trigger_pending:
            parts.append("recovery run requested")
        return " - ".join(parts)

    def summary(self) -> str:
        """One line for the task log."""
        parts = [
            f"stage={self.stage}",
            f"root_cause={self.root_cause}",
            f"fingerprint={self.fingerprint}",
            f"occurrences={self.occurrences}",
            f"recorded={self.record_status or 'no'}",
            f"triggered={self.triggered}",
            f"pending={self.trigger_pending}",
            f"recovery_run={self.recovery_run_id}",
            f"elapsed={self.elapsed_seconds:.3f}s",
        ]
        if self.trigger_reason:
            parts.append(f"trigger_reason={self.trigger_reason!r}")
        if self.timed_out:
            parts.append("timed_out=True")
        if self.errors:
            parts.append(f"errors={'; '.join(self.errors)!r}")
        return " ".join(parts)


@dataclass(frozen=True)
class ReportSettings:
    """What the report does and with what.

    :param recovery_dag_id: the DAG started for new incidents.
    :param trigger_recovery: start runs at all.
    :param collect_context: probe services, resources and network.
    :param log_tail_lines: lines of the attempt's log to read.
    :param ledger_url: the ledger; default the configured one.
    """

    recovery_dag_id: str = RECOVERY_DAG_ID
    trigger_recovery: bool = True
    collect_context: bool = True
    log_tail_lines: int = 500
    ledger_url: str | None = None


class FailureReport:
    """One failure's way through the notifier.

    :param context: the callback's context.
    :param settings: what to do.
    :param trigger: sends run requests.
    :param outbox: the record of requests.
    :param deadline: the time budget.
    :param outcome: where progress is noted (shared with the thread that waits for it).
    """

    def __init__(
        self,
        context: Mapping[str, Any],
        settings: ReportSettings,
        trigger: RecoveryRunStarter,
        outbox: TriggerOutbox,
        deadline: Deadline,
        outcome: NotificationOutcome,
    ) -> None:
        self.context = context
        self.settings = settings
        self.trigger = trigger
        self.outbox = outbox
        self.deadline = deadline
        self.outcome = outcome
        self.event: FailureEvent | None = None
        self.diagnosis: Diagnosis | None = None
        self.exception: Any = context.get("exception")
        self.lock = threading.Lock()
        self.cancelled = False

    def run(self) -> NotificationOutcome:
        """Run every step; errors are noted in the outcome, never raised."""
        try:
            self._run()
        except _Cancelled:
            pass
        except Exception as exc:
            self.outcome.errors.append(f"{self.outcome.stage}: {type(exc).__name__}: {exc}")
            log.warning("RecoveryNotifier failed at %s", self.outcome.stage, exc_info=True)
        return self.outcome

    def _step(self, stage: str) -> None:
        """Enter ``stage``, unless the waiting thread took the failure over (then stop here)."""
        with self.lock:
            if self.cancelled:
                raise _Cancelled
            self.outcome.stage = stage

    def _run(self) -> None:
        probes = self._start_context()  # they mostly wait: the next steps run meanwhile
        from qubinode_recovery_provider.utils import task_failure as tf

        self._step("read_log")
        key = tf.task_key(self.context)
        tail = tf.read_attempt_log(key, self.settings.log_tail_lines)
        self.outcome.text_source = tail.source
        event = tf.failure_event(
            key, self.exception, tail, missing_exception_text=_no_exception(key, self.context)
        )
        with self.lock:
            self.event = event
        self._step("collect_context")
        self._prepare()
        host = probes(tail)
        self._step("diagnose")
        diagnosis = self._diagnose(event, host)
        self._step("record")
        incident, ledger = self._record(event, diagnosis)
        if self.settings.trigger_recovery:
            self._step("trigger")
            self._trigger(incident, ledger, diagnosis)
        self._step("done")

    def _diagnose(self, event: FailureEvent, host: Any) -> Diagnosis:
        """The analyzer's diagnosis; an unanalysed one when the analysis fails (the failure is still
        recorded)."""
        from qubinode_recovery_provider.utils import task_failure as tf

        try:
            analyzer = tf.shared_analyzer()
            self._note_library_warnings(analyzer.warnings, analyzer.library.warning_count)
            diagnosis = analyzer.analyze(event, host, deadline=self.deadline.end)
            diagnosis = self._second_opinion(event, host, diagnosis)
        except Exception as exc:
            self.outcome.errors.append(f"analysis failed: {type(exc).__name__}: {exc}")
            diagnosis = tf.unanalysed_diagnosis(event, f"analysis failed ({type(exc).__name__})")
        with self.lock:
            self.diagnosis = diagnosis
        self.outcome.fingerprint = diagnosis.fingerprint
        self.outcome.root_cause = diagnosis.root_cause.value
        self.outcome.confidence = diagnosis.confidence
        return diagnosis

    def _second_opinion(self, event: FailureEvent, host: Any, diagnosis: Diagnosis) -> Diagnosis:
        """The configured LLM second opinion within the budget, or deferred to the recovery DAG when the
        time left cannot hold its call (``docs/llm.md``); a fall-back is noted in the outcome."""
        from qubinode_recovery_provider import runtime

        opinion = runtime.current().second_opinion
        if opinion is None or not opinion.wanted(diagnosis):
            return diagnosis
        reviewed = opinion.review(
            diagnosis, event.text(), event=event, context=host, deadline=self.deadline.end
        )
        if reviewed.llm is not None and reviewed.llm.status != "applied":
            self.outcome.errors.append(f"{reviewed.llm.label} {reviewed.llm.status}: {reviewed.llm.detail}")
        return reviewed

    def _start_context(self) -> Callable[[LogTail], Any]:
        """Start probing the host in a thread; return what waits for the result and gives it the last
        lines of the log tail (``None`` when the probes are off, or still running when the notifier's
        budget is spent: the collector itself stops at its share of the budget).

        The probes mostly wait (subprocesses, psutil's CPU sample), so the worker reads the log, loads
        the analyzer and opens the ledger meanwhile (:meth:`_prepare`) instead of waiting with them.
        """
        if not self.settings.collect_context:
            return lambda tail: None
        seconds = self.deadline.share(CONTEXT_SHARE)
        box: list[Any] = []
        finished = threading.Event()

        def probe() -> None:
            try:
                box.append(self._collect_context(seconds))
            finally:
                finished.set()

        threading.Thread(target=probe, name="qubinode-context-probes", daemon=True).start()

        def result(tail: LogTail) -> Any:
            # the collector stops at its own deadline (its share of the budget), as when it ran here
            if not finished.wait(max(0.0, self.deadline.remaining())):
                self.outcome.errors.append("context not collected within the notifier's budget")
                return None
            host = box[0] if box else None
            if host is not None:
                host.log_lines = [str(line) for line in tail.lines[-CONTEXT_LOG_LINES:]]
            return host

        return result

    def _prepare(self) -> None:
        """While the probes run: load the pattern library and its prefilter, create the ledger's engine,
        build the validators of the models the next steps fill and import the trigger step's modules (no
        write, no query, no request: CPU work the later steps would do after the wait); an error here is
        left to the step that needs the part, which notes or spools it."""
        from qubinode_recovery_provider.utils import task_failure as tf

        try:
            tf.shared_analyzer().matcher  # noqa: B018
            self._ledger().engine  # noqa: B018
            _build_models()
            if self.settings.trigger_recovery:
                import qubinode_recovery_provider.recovery.intake  # noqa: F401
        except Exception:
            log.debug("RecoveryNotifier: preparing the analyzer or the ledger failed", exc_info=True)

    def _ledger(self) -> Ledger:
        """The failure path's ledger, its lock wait a share of what is left of the budget (the process
        keeps one per URL: the first caller's share holds, :func:`ledger_for`)."""
        return ledger_for(self.settings.ledger_url, self.deadline.share(LEDGER_SHARE, cap=5.0))

    def _collect_context(self, seconds: float) -> Any:
        """Probe the host within ``seconds``; ``None`` when the probes cannot even start."""
        from qubinode_recovery_provider.diagnosis.context import ContextCollector

        try:
            collector = ContextCollector(
                timeout=min(seconds / 2, _probe_timeout()), deadline=seconds, cpu_interval=CPU_SAMPLE_SECONDS
            )
            return collector.collect()
        except Exception as exc:
            self.outcome.errors.append(f"context not collected: {type(exc).__name__}: {exc}")
            return None

    def _note_library_warnings(self, warnings: list[str], count: int) -> None:
        """Say in the outcome (and so in the task log) that the pattern library loaded with problems."""
        if count:
            first = warnings[0] if warnings else ""
            self.outcome.errors.append(f"pattern library: {count} warning(s), first: {first}")

    def _record(self, event: FailureEvent, diagnosis: Diagnosis) -> tuple[Incident, Ledger]:
        """Record the attempt once; the incident (``id`` None when it is not in the database yet)."""
        from qubinode_recovery_provider.store.ledger import LOST

        ledger = self._ledger()
        recorded = ledger.record_occurrence(event, diagnosis)
        incident = recorded.incident
        self._note_record(recorded.status)
        self.outcome.incident_id = incident.id
        self.outcome.occurrences = incident.occurrences
        if recorded.status == LOST:
            self.outcome.errors.append("incident LOST: ledger and spool both failed (event logged above)")
        return incident, ledger

    def _note_record(self, status: str) -> None:
        from qubinode_recovery_provider.store.ledger import DUPLICATE, SPOOLED, WRITTEN

        with self.lock:
            if self.outcome.record_status in (WRITTEN, DUPLICATE, SPOOLED):
                return  # the other writer got there first; this one converged on it
            self.outcome.record_status = status
            self.outcome.incident_recorded = status in (WRITTEN, DUPLICATE)
            self.outcome.incident_spooled = status == SPOOLED

    def _trigger(self, incident: Incident, ledger: Ledger, diagnosis: Diagnosis) -> None:
        from qubinode_recovery_provider.recovery.intake import EarlierRequest, failure_starts_run

        existing = self.outbox.get(diagnosis.fingerprint)
        earlier = EarlierRequest(existing.created, existing.status) if existing is not None else None
        verdict = failure_starts_run(
            incident, earlier, ledger, _policy(), dag_auto_recovery=dag_switch(self.context)
        )
        self.outcome.new_incident = incident.occurrences <= 1
        self.outcome.trigger_reason = verdict.reason
        if verdict.start:
            record = self._new_record(incident, diagnosis, verdict.enable_auto_recovery)
        elif verdict.resend and existing is not None:
            record = existing  # same incident, not delivered yet: try again now
        else:
            return
        self.trigger.timeout = max(MIN_STEP_SECONDS, self.deadline.remaining() - 0.1)
        result = deliver(self.outbox, self.trigger, record, self.context)
        self.outcome.recovery_run_id = record.run_id
        self.outcome.triggered = result.delivered
        self.outcome.trigger_pending = record.status == PENDING
        if not result.delivered:
            self.outcome.errors.append(f"recovery run not started yet: {result.detail}")
        elif self.deadline.remaining() > 1.0:
            self._replay_others(diagnosis.fingerprint)

    def _replay_others(self, fingerprint: str) -> None:
        for record in self.outbox.pending(limit=REPLAY_AFTER_SUCCESS + 1):
            if record.fingerprint == fingerprint or self.deadline.remaining() < 1.0:
                continue
            self.trigger.timeout = max(MIN_STEP_SECONDS, self.deadline.remaining() - 0.5)
            deliver(self.outbox, self.trigger, record, self.context)

    def _new_record(
        self, incident: Incident, diagnosis: Diagnosis, enable_auto_recovery: bool | None
    ) -> TriggerRecord:
        conf = recovery_conf(
            self.event,
            diagnosis,
            incident,
            self.exception,
            self.context,
            enable_auto_recovery=enable_auto_recovery,
        )
        record = TriggerRecord(
            fingerprint=diagnosis.fingerprint,
            dag_id=self.settings.recovery_dag_id,
            run_id=recovery_run_id(diagnosis.fingerprint),
            conf=conf,
        )
        try:
            self.outbox.put(record)  # pending first: a worker killed now leaves it to be replayed
        except OSError as exc:
            self.outcome.errors.append(f"recovery request not kept on disk: {exc}")
        return record

    def rescue(self) -> str:
        """Take the failure over from the worker thread when the deadline passed before it was recorded:
        spool what is known under the attempt's idempotency key, without analysing anything (the text
        may be what made the analysis slow). The worker stops at its next step.

        :return: what was done, for the log.
        """
        from qubinode_recovery_provider.store.ledger import LOST, SPOOLED, occurrence_id, record_payload
        from qubinode_recovery_provider.store.spool import Spool, SpoolEvent
        from qubinode_recovery_provider.store.url import default_spool_dir
        from qubinode_recovery_provider.utils import task_failure as tf

        with self.lock:
            self.cancelled = True
            event, diagnosis = self.event, self.diagnosis
            if self.outcome.incident_recorded or self.outcome.incident_spooled:
                return "nothing to rescue"
        if event is None:
            key = tf.task_key(self.context)
            missing = _no_exception(key, self.context)
            tail = tf.LogTail([], "log not read in time")
            event = tf.failure_event(key, self.exception, tail, missing_exception_text=missing)
        if diagnosis is None:
            diagnosis = tf.unanalysed_diagnosis(event, RESCUE_REASON)
            self.outcome.fingerprint = diagnosis.fingerprint
            self.outcome.root_cause = diagnosis.root_cause.value
        spool = Spool(default_spool_dir())
        try:
            occurrence = occurrence_id(event)  # None for a failure that names no run: a fresh id then
            payload = record_payload(event, diagnosis)
            spool.append(
                SpoolEvent("record_failure", payload, occurrence)
                if occurrence
                else SpoolEvent("record_failure", payload)
            )
        except OSError as exc:
            self._note_record(LOST)
            log.error(
                "qubinode RecoveryNotifier: incident LOST (spool %s: %s): %s", spool.directory, exc, event
            )
            return f"incident LOST: spool not writable ({exc})"
        self._note_record(SPOOLED)
        return f"incident spooled to {spool.directory}"


class _Cancelled(Exception):
    """The waiting thread took the failure over; the worker stops."""


def deliver(
    outbox: TriggerOutbox,
    trigger: RecoveryRunStarter,
    record: TriggerRecord,
    context: Mapping[str, Any] | None = None,
) -> TriggerResult:
    """Send one request and record the result in the outbox.

    :param outbox: the record of requests.
    :param trigger: the sender.
    :param record: the request.
    :param context: the callback's context, when called from one.
    """
    result = trigger.send(
        record.dag_id,
        record.run_id,
        record.conf,
        note=f"Started by qubinode RecoveryNotifier for incident {record.fingerprint}",
        context=context,
    )
    record.attempts += 1
    if result.delivered:
        record.status, record.via, record.last_error = SENT, result.via, ""
    else:
        record.last_error = result.detail[:500]
        if not result.retry_later or record.attempts >= MAX_DELIVERY_ATTEMPTS:
            record.status = FAILED
    try:
        outbox.put(record)
    except OSError as exc:
        log.warning("could not update the recovery request record %s: %s", record.fingerprint, exc)
    return result


def deliver_pending_triggers(
    *,
    conn_id: str | None = None,
    via: str = "auto",
    limit: int = 50,
    timeout: float = 10.0,
    outbox: TriggerOutbox | None = None,
) -> list[TriggerRecord]:
    """Deliver recovery-run requests that could not be sent when their failure happened.

    Call it from anything that runs regularly on the worker hosts (the recovery or the shadow scan DAG,
    a cron job). Each request keeps its run id, so one that went through already is not started twice.
    Records of delivered requests older than ``[qubinode_recovery] retention_days`` are removed.

    :param conn_id: the API connection; default ``[qubinode_recovery] recovery_conn_id``.
    :param via: ``auto``, ``api`` or ``task_sdk`` (see :mod:`.run_starter`).
    :param limit: the most requests delivered.
    :param timeout: seconds per request.
    :param outbox: the outbox; default the configured one.
    :return: the records tried, with their new status.
    """
    from qubinode_recovery_provider.notifications.run_starter import RecoveryRunStarter

    outbox = outbox or TriggerOutbox.from_config()
    trigger = RecoveryRunStarter(conn_id=conn_id, via=via, timeout=timeout)
    tried = []
    for record in outbox.pending(limit):
        deliver(outbox, trigger, record)
        tried.append(record)
    outbox.prune(_retention())
    return tried


def recovery_run_id(fingerprint: str, now: datetime | None = None) -> str:
    """A run id for the recovery run of one incident (characters Airflow allows by default).

    :param fingerprint: the incident.
    :param now: the time (tests).
    """
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%S")
    safe = "".join(c for c in fingerprint if c.isalnum())[:16] or "unknown"
    return f"qubinode_recovery__{safe}__{stamp}_{secrets.token_hex(3)}"


def recovery_conf(
    event: FailureEvent | None,
    diagnosis: Diagnosis,
    incident: Incident,
    exception: Any,
    context: Mapping[str, Any],
    *,
    enable_auto_recovery: bool | None = None,
) -> dict[str, Any]:
    """The conf of the recovery run: the failed task and the incident; all text redacted.

    :param event: the failure.
    :param diagnosis: its diagnosis.
    :param incident: the incident it belongs to.
    :param exception: the original exception.
    :param context: the callback's context.
    :param enable_auto_recovery: the run's switch (False when the failed DAG turned automatic recovery
        off); None leaves the recovery DAG's default.
    """
    from qubinode_recovery_provider.utils import task_failure as tf

    missing = _no_exception(tf.task_key(context), context)
    message = tf.exception_summary(exception, MAX_MESSAGE_CHARS, missing)
    decisive = diagnosis.matched_patterns[0].evidence if diagnosis.matched_patterns else ""
    if decisive and decisive not in message:
        message = f"{message}\n{decisive}"
    ti = context.get("ti")
    state = getattr(ti, "state", None)
    conf = {
        "failed_dag_id": event.dag_id if event else None,
        "failed_task_id": event.task_id if event else None,
        "failed_run_id": event.run_id if event else None,
        "failed_try_number": event.try_number if event else None,
        "failed_map_index": event.map_index if event else -1,
        "failed_state": str(getattr(state, "value", state)) if state is not None else None,
        "fingerprint": diagnosis.fingerprint,
        "root_cause": diagnosis.root_cause.value,
        "confidence": diagnosis.confidence,
        "incident_id": incident.id,
        "failure_message": message[:MAX_MESSAGE_CHARS],  # both parts were redacted where they came in
        "source": "qubinode_recovery_provider.notifications.RecoveryNotifier",
    }
    if enable_auto_recovery is not None:
        conf["enable_auto_recovery"] = enable_auto_recovery
    return conf


def dag_switch(context: Mapping[str, Any]) -> bool | None:
    """The failed DAG's own automatic-recovery switch (param or tag ``qubinode_auto_recovery``), read
    from the callback's context; None when the DAG says nothing.

    :param context: the callback's context.
    """
    from qubinode_recovery_provider.recovery.policy import dag_auto_recovery

    params = context.get("params") or {}
    tags = list(getattr(context.get("dag"), "tags", None) or [])
    return dag_auto_recovery(params, tags)


def _no_exception(key: Any, context: Mapping[str, Any]) -> str:
    """The text of a failure reported without an exception (DAG processor, DAG-level callback)."""
    who = ".".join(str(p) for p in (key.dag_id, key.task_id) if p) or "unknown task"
    reason = context.get("reason")
    if reason:
        return f"DAG run of {key.dag_id} failed ({reason}); last task {who}"
    return f"task {who} failed without an exception in the callback context (killed from outside?)"


# --- process-wide helpers ------------------------------------------------------------------------


def _build_models() -> None:
    """Build the validators of the diagnosis and the incident (the models build theirs on first use,
    ``defer_build``; once per process)."""
    from qubinode_recovery_provider.models import Diagnosis, Incident

    for model in (Diagnosis, Incident):
        model.model_rebuild()


def ledger_for(url: str | None, timeout: float) -> Ledger:
    """The ledger the failure path writes to: ``url`` (default: the configured one) with this lock
    timeout, without automatic spool replay
    (:meth:`~qubinode_recovery_provider.runtime.Runtime.failure_ledger`).

    :param url: a SQLAlchemy URL, or ``None``.
    :param timeout: seconds to wait for a lock or a connection before spooling.
    """
    from qubinode_recovery_provider import runtime

    return runtime.current().failure_ledger(url, timeout)


def _probe_timeout() -> float:
    from qubinode_recovery_provider import config

    try:
        return config.get_float("probe_timeout_seconds")
    except config.ConfigError:
        return 2.0


def _retention() -> timedelta:
    from qubinode_recovery_provider import config

    try:
        return timedelta(days=config.get_int("retention_days"))
    except config.ConfigError:
        return timedelta(days=90)


def _policy() -> RecoveryPolicy | None:
    """The configured recovery policy; None when the configuration cannot be read."""
    from qubinode_recovery_provider.recovery.policy import RecoveryPolicy

    try:
        return RecoveryPolicy.from_config()
    except Exception:  # a bad value, an unreadable airflow.cfg: the intake treats the breaker as unknown
        return None


__all__ = [
    "RECOVERY_DAG_ID",
    "FailureReport",
    "NotificationOutcome",
    "ReportSettings",
    "dag_switch",
    "deliver",
    "deliver_pending_triggers",
    "ledger_for",
    "recovery_conf",
    "recovery_run_id",
]
