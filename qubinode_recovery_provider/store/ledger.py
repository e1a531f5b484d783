"""The incident ledger: what failed, what the provider thought and did about it.

:class:`Ledger` is the only entry point. Writes that feed the record (failures, plans, attempt
outcomes, checkpoints, escalations, shadow findings) never raise: whatever the database answers (locked,
down, refused, a corrupt file, a full disk), they are spooled to local disk and replayed later, exactly
once; a write the database can never take is set aside in a ``.rejected`` spool file on replay, counted,
never dropped. A failed attempt is recorded once however often it is written (:func:`occurrence_id`).
Operations that need an answer from the database (reads, :meth:`Ledger.begin_attempt`,
:meth:`Ledger.purge`) raise :class:`LedgerUnavailable` when it is unavailable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict, cast

from pydantic import ValidationError
from sqlalchemy import exc as sa_exc

from qubinode_recovery_provider import config
from qubinode_recovery_provider.models import (
    AttemptOutcome,
    Diagnosis,
    FailureEvent,
    Incident,
    IncidentState,
    RecoveryAttempt,
    RecoveryPlan,
    ShadowError,
    utcnow,
)
from qubinode_recovery_provider.redaction import redact_data
from qubinode_recovery_provider.store import escalations, ops, queries
from qubinode_recovery_provider.store import schema as t
from qubinode_recovery_provider.store.engine import (
    READ_OPTION,
    LedgerUnavailable,
    create_ledger_engine,
    is_unavailable,
    normalize_url,
)
from qubinode_recovery_provider.store.migrate import upgrade
from qubinode_recovery_provider.store.spool import ReplayResult, Spool, SpoolEvent, SpoolReject, SpoolStop
from qubinode_recovery_provider.store.url import default_spool_dir, resolve_ledger_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine

    from qubinode_recovery_provider.store.escalations import IssueRecord
    from qubinode_recovery_provider.store.queries import (
        CheckpointEntry,
        EscalationEntry,
        IncidentDetail,
        ShadowEntry,
    )

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 5.0
AUTO_FLUSH_INTERVAL = 30.0
AUTO_FLUSH_LIMIT = 200
#: What became of a write: applied now, applied before (same event id), spooled to disk, or lost (the
#: database and the spool both failed; the event is in the process log only).
WRITTEN = "written"
DUPLICATE = "duplicate"
SPOOLED = "spooled"
LOST = "lost"
_PERMANENT = (ValidationError, KeyError, TypeError, ValueError, sa_exc.IntegrityError, sa_exc.DataError)


@dataclass(frozen=True)
class RecordedFailure:
    """The incident after one failed attempt was recorded, and what became of the write.

    :param incident: the incident (``id`` None when it was not written to the database now).
    :param status: :data:`WRITTEN`, :data:`DUPLICATE` (this attempt was recorded before),
        :data:`SPOOLED` or :data:`LOST`.
    """

    incident: Incident
    status: str


@dataclass(frozen=True)
class RecordedDiagnosis:
    """One diagnosis as the ledger holds it.

    :param id: its row id.
    :param diagnosis: the diagnosis.
    :param host: the host the failure happened on, when known.
    """

    id: int
    diagnosis: Diagnosis
    host: str | None


class SpoolStatus(TypedDict):
    """What waits in the spool (:meth:`Ledger.spool_status`).

    :param directory: the spool directory.
    :param pending_events: events waiting to be replayed.
    :param rejected_events: events set aside in ``.rejected`` files.
    """

    directory: str
    pending_events: int
    rejected_events: int


def occurrence_id(event: FailureEvent) -> str | None:
    """The idempotency key of one failed attempt (DAG, run, task, map index, try), or ``None`` when the
    event does not name its run.

    :param event: the failure.
    """
    if not (event.dag_id and event.run_id):
        return None
    parts = [
        event.dag_id,
        event.run_id,
        event.task_id or "",
        str(event.map_index),
        str(event.try_number or ""),
    ]
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "replace")).hexdigest()
    return f"failure-{digest[:48]}"


def record_payload(event: FailureEvent, diagnosis: Diagnosis) -> dict[str, Any]:
    """The JSON payload of a ``record_failure`` write (direct or spooled).

    :param event: the failure.
    :param diagnosis: its diagnosis.
    """
    return {"event": event.model_dump(mode="json"), "diagnosis": diagnosis.model_dump(mode="json")}


def _one_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc)
    return " ".join(text.split())[:300]


class Ledger:
    """The ledger at ``url`` (SQLite or PostgreSQL), spooling to ``spool_dir`` when it is unavailable.

    :param url: SQLAlchemy URL; ``postgresql://`` uses psycopg 3.
    :param spool_dir: where unwritten events wait; default ``<state_dir>/spool``.
    :param timeout: seconds to wait for a lock or a connection before spooling.
    :param auto_flush_interval: after a successful write, replay the spool when it was last looked at
        more than this many seconds ago (0 disables automatic replay).
    :raises LedgerURLError: for a malformed URL or an unsupported database.
    """

    def __init__(
        self,
        url: str | URL,
        spool_dir: Path | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        auto_flush_interval: float = AUTO_FLUSH_INTERVAL,
    ) -> None:
        self.url = normalize_url(url)
        self.spool = Spool(Path(spool_dir) if spool_dir is not None else default_spool_dir())
        self.timeout = timeout
        self.auto_flush_interval = auto_flush_interval
        self.last_flush: ReplayResult | None = None
        self._engine: Engine | None = None
        self._pid = os.getpid()
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._last_flush_check = -math.inf

    @classmethod
    def from_config(cls, *, migrate: bool = True, **kwargs: Any) -> Ledger:
        """The ledger configured in ``[qubinode_recovery]`` (``ledger_url``, ``ledger_conn_id`` or the
        SQLite file in ``state_dir``), migrated to the current schema when it is reachable."""
        ledger = cls(resolve_ledger_url(), default_spool_dir(), **kwargs)
        if migrate:
            try:
                ledger.migrate()
            except LedgerUnavailable as exc:
                log.warning("ledger unavailable, will migrate on first use: %s", exc)
        return ledger

    def __repr__(self) -> str:
        return f"Ledger({self.url.render_as_string(hide_password=True)!r})"

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (created on first use; its pool is renewed after a fork)."""
        if self._engine is None:
            self._engine = create_ledger_engine(self.url, self.timeout)
        elif self._pid != os.getpid():
            self._engine.dispose(close=False)
            self._pid = os.getpid()
        return self._engine

    @property
    def backend(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.url.get_backend_name()

    def close(self) -> None:
        """Close pooled connections."""
        if self._engine is not None:
            self._engine.dispose()

    # --- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _available(self) -> Iterator[None]:
        """Turn "database locked / down" errors into :class:`LedgerUnavailable`."""
        try:
            yield
        except sa_exc.SQLAlchemyError as exc:
            if is_unavailable(exc):
                raise LedgerUnavailable(_one_line(exc)) from exc
            raise

    def migrate(self) -> bool:
        """Upgrade the schema to the newest migration (idempotent, safe from many processes at once);
        returns True when something was migrated.

        :raises LedgerUnavailable: when the database cannot be reached or stays locked.
        """
        with self._schema_lock, self._available():
            changed = upgrade(self.engine)
            self._schema_ready = True
        return changed

    def _ensure_schema(self) -> None:
        if not self._schema_ready:
            self.migrate()

    @contextlib.contextmanager
    def _reading(self) -> Iterator[Connection]:
        with self._available():
            self._ensure_schema()
            with self.engine.connect().execution_options(**{READ_OPTION: True}) as conn:
                yield conn

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Connection]:
        with self._available():
            self._ensure_schema()
            with self.engine.begin() as conn:
                yield conn

    def _apply(self, event: SpoolEvent) -> Any:
        return self._apply_once(event)[1]

    def _apply_once(self, event: SpoolEvent) -> tuple[bool, Any]:
        with self._writing() as conn:
            return ops.apply(conn, event.op, event.id, event.payload)

    def _write(self, op: str, payload: dict[str, Any], event_id: str | None = None) -> tuple[bool, Any]:
        """Apply one write now, or spool it; returns (written now, result)."""
        status, result = self._write_status(op, payload, event_id)
        return status in (WRITTEN, DUPLICATE), result

    def _write_status(self, op: str, payload: dict[str, Any], event_id: str | None = None) -> tuple[str, Any]:
        """Apply one write now, or spool it; returns (:data:`WRITTEN`, :data:`DUPLICATE`,
        :data:`SPOOLED` or :data:`LOST`, the operation's result).

        Any error of the database (locked, down, refused, a corrupt file, a full disk, a schema it cannot
        migrate) spools the write: the spool replays it later, and sets it aside in a ``.rejected`` file if
        it can never be applied. Only a spool that cannot be written loses it (logged at ERROR, whole).
        """
        clean = cast("dict[str, Any]", redact_data(payload))  # the one redaction step of ledger and spool
        event = SpoolEvent(op=op, payload=clean, **({"id": event_id} if event_id else {}))
        try:
            applied, result = self._apply_once(event)
        except Exception as exc:
            if not isinstance(exc, LedgerUnavailable):
                log.warning(
                    "ledger write %s failed (%s: %s); spooling it", op, type(exc).__name__, _one_line(exc)
                )
            return (SPOOLED if self._spool_event(event, exc) else LOST), None
        self._maybe_flush()
        return (WRITTEN if applied else DUPLICATE), result

    def _spool_event(self, event: SpoolEvent, reason: BaseException) -> bool:
        """Spool ``event``; False (and the event logged whole at ERROR, the last record of it) when the
        spool cannot be written."""
        try:
            self.spool.append(event)
        except OSError as exc:
            log.error(
                "ledger unavailable (%s) and spool %s not writable (%s); event: %s",
                reason,
                self.spool.directory,
                exc,
                event.to_line().strip(),
            )
            return False
        log.warning("ledger unavailable (%s): %s spooled to %s", reason, event.op, self.spool.path)
        return True

    def _maybe_flush(self) -> None:
        if self.auto_flush_interval <= 0:
            return
        now = time.monotonic()
        if now - self._last_flush_check < self.auto_flush_interval:
            return
        self._last_flush_check = now
        if self.spool.has_pending():
            self.flush_spool(limit=AUTO_FLUSH_LIMIT)

    # --- spool -----------------------------------------------------------------------------------

    def flush_spool(self, limit: int | None = None) -> int:
        """Replay spooled writes (at most ``limit``) into the database, each exactly once; returns how
        many were replayed. Stops quietly when the database is unavailable again; unreadable events are
        moved to ``.rejected`` files (see :attr:`last_flush` and :meth:`spool_status`)."""
        budget = [math.inf if limit is None else limit]

        def replay_one(event: SpoolEvent) -> None:
            if budget[0] <= 0:
                raise SpoolStop
            self._replay_one(event)
            budget[0] -= 1

        self.last_flush = self.spool.replay(replay_one)
        if self.last_flush.applied or self.last_flush.rejected:
            log.info(
                "ledger spool: replayed %d, rejected %d, %d left",
                self.last_flush.applied,
                self.last_flush.rejected,
                self.last_flush.remaining,
            )
        return self.last_flush.applied

    def _replay_one(self, event: SpoolEvent) -> None:
        if event.op not in ops.OPS:
            raise SpoolReject(f"unknown operation {event.op!r}")
        try:
            self._apply(event)
        except LedgerUnavailable:
            raise SpoolStop from None
        except _PERMANENT as exc:
            raise SpoolReject(f"{event.op} {event.id}: {type(exc).__name__}: {_one_line(exc)}") from None

    def spool_status(self) -> SpoolStatus:
        """``{"directory", "pending_events", "rejected_events"}``."""
        return {
            "directory": str(self.spool.directory),
            "pending_events": self.spool.pending_events(),
            "rejected_events": self.spool.rejected_events(),
        }

    # --- incidents -------------------------------------------------------------------------------

    def record_failure(self, event: FailureEvent, diagnosis: Diagnosis) -> Incident:
        """Count one more occurrence of the incident ``diagnosis.fingerprint`` (creating it on first
        sight), add the DAG and host to it and store the diagnosis. A resolved incident seen again is
        open again. See :meth:`record_occurrence`, which also says what became of the write.

        Never raises because the ledger is unavailable: the write is spooled and the returned incident
        (``id`` None) is built from what is known.
        """
        return self.record_occurrence(event, diagnosis).incident

    def record_occurrence(self, event: FailureEvent, diagnosis: Diagnosis) -> RecordedFailure:
        """Record one failed attempt exactly once, and say how (see :class:`RecordedFailure`).

        An attempt that names its task instance (DAG, run, task, map index, try) is counted once however
        often it is recorded: by the failure callback, by its rescue path after a missed deadline, by a
        spool replay. Never raises.
        """
        status, incident = self._write_status(
            "record_failure", record_payload(event, diagnosis), occurrence_id(event)
        )
        if status == DUPLICATE:
            incident = self._incident_or_none(diagnosis.fingerprint)
        if incident is None:
            incident = Incident(
                fingerprint=diagnosis.fingerprint,
                root_cause=diagnosis.root_cause,
                summary=diagnosis.summary,
                occurrences=1,
                first_seen=event.occurred_at,
                last_seen=event.occurred_at,
                dag_ids=[d for d in [event.dag_id or diagnosis.dag_id] if d],
                hosts=[h for h in [event.host] if h],
            )
        return RecordedFailure(incident, status)

    def record_diagnosis(self, event: FailureEvent, diagnosis: Diagnosis) -> None:
        """Store a later diagnosis of a recorded failure (the recovery DAG's LLM second opinion) without
        counting an occurrence; ignored when its incident is unknown, spooled when the ledger is down."""
        self._write("record_diagnosis", record_payload(event, diagnosis))

    def _incident_or_none(self, fingerprint: str) -> Incident | None:
        try:
            return self.get_incident(fingerprint)
        except Exception:  # the write was seen; its incident can be read later
            return None

    def set_incident_state(self, fingerprint: str, state: IncidentState) -> None:
        """Move the incident to ``state`` (spooled when the ledger is unavailable)."""
        self._write("set_incident_state", {"fingerprint": fingerprint, "state": IncidentState(state).value})

    def get_incident(self, fingerprint_or_id: str | int) -> Incident | None:
        """The incident with this fingerprint, or this numeric id."""
        with self._reading() as conn:
            return queries.get_incident(conn, fingerprint_or_id)

    def list_incidents(self, state: IncidentState | None = None, limit: int = 50) -> list[Incident]:
        """Incidents, most recently seen first."""
        with self._reading() as conn:
            return queries.list_incidents(conn, state, limit)

    def incident_detail(self, fingerprint_or_id: str | int, limit: int = 50) -> IncidentDetail:
        """The incident with its latest diagnoses, plans, attempts, escalations and the checkpoints of
        its runs, JSON-ready; ``{}`` when there is no such incident."""
        with self._reading() as conn:
            return queries.incident_detail(conn, fingerprint_or_id, limit)

    def incident_page(
        self, where: queries.IncidentFilter, offset: int = 0, limit: int = 50
    ) -> tuple[list[Incident], int]:
        """One page of incidents that match ``where``, most recently seen first, and the total."""
        with self._reading() as conn:
            return queries.incident_page(conn, where, offset, limit)

    def task_fingerprint(self, dag_id: str, task_id: str, run_id: str | None = None) -> str | None:
        """The fingerprint of the newest diagnosis of this task (in this run, when given)."""
        with self._reading() as conn:
            return queries.task_fingerprint(conn, dag_id, task_id, run_id)

    def top_incidents(self, limit: int = 10) -> list[Incident]:
        """The incidents seen most often."""
        with self._reading() as conn:
            return queries.top_incidents(conn, limit)

    def unexplained_texts(self, limit: int = 500) -> list[str]:
        """The failure texts of the newest diagnoses no pattern explained."""
        with self._reading() as conn:
            return queries.unexplained_texts(conn, limit)

    def recorded_diagnosis(
        self,
        fingerprint: str,
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
        task_id: str | None = None,
        same_run_only: bool = False,
    ) -> RecordedDiagnosis | None:
        """The newest diagnosis stored under ``fingerprint`` for this DAG, run and task (each only when
        given); with none, the newest of the fingerprint, unless ``same_run_only``. ``None`` when there
        is none or the stored one no longer validates.

        :raises LedgerUnavailable: when the database cannot be read.
        """
        with self._reading() as conn:
            row = queries.newest_diagnosis(
                conn, fingerprint, dag_id=dag_id, run_id=run_id, task_id=task_id, same_run_only=same_run_only
            )
        if row is None:
            return None
        try:
            return RecordedDiagnosis(int(row.id), Diagnosis.model_validate(row.diagnosis), row.host)
        except ValidationError:
            log.warning("diagnosis %s of %s no longer validates; ignored", row.id, fingerprint)
            return None

    # --- plans and attempts ----------------------------------------------------------------------

    def record_plan(self, plan: RecoveryPlan) -> None:
        """Store a recovery plan (spooled when the ledger is unavailable)."""
        self._write("record_plan", {"plan": plan.model_dump(mode="json")})

    def begin_attempt(self, attempt: RecoveryAttempt) -> bool:
        """Claim ``attempt.idempotency_key``: True when this caller inserted it and may act, False
        when the key exists (someone else runs or ran it). Exactly one of any number of concurrent
        callers gets True.

        :raises LedgerUnavailable: when the ledger cannot say; the caller must not act.
        """
        table = t.attempts
        with self._writing() as conn:
            stmt = (
                ops.upsert(conn, table)
                .values(
                    idempotency_key=attempt.idempotency_key,
                    fingerprint=attempt.incident_fingerprint,
                    action=attempt.action,
                    action_args=attempt.model_dump(mode="json")["action_args"],
                    dry_run=attempt.dry_run,
                    outcome=attempt.outcome.value,
                    detail=attempt.detail,
                    host=attempt.host,
                    started_at=attempt.started_at,
                    finished_at=attempt.finished_at,
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(table.c.id)
            )
            return conn.execute(stmt).first() is not None

    def finish_attempt(self, idempotency_key: str, outcome: AttemptOutcome, detail: str = "") -> None:
        """Record the outcome of a claimed attempt (spooled when the ledger is unavailable)."""
        payload = {
            "idempotency_key": idempotency_key,
            "outcome": AttemptOutcome(outcome).value,
            "detail": detail,
            "finished_at": utcnow().isoformat(),
        }
        self._write("finish_attempt", payload)

    def get_attempt(self, idempotency_key: str) -> RecoveryAttempt | None:
        """The attempt claimed under ``idempotency_key``."""
        with self._reading() as conn:
            return queries.get_attempt(conn, idempotency_key)

    def attempts(
        self,
        fingerprint: str | None = None,
        host: str | None = None,
        since: datetime | None = None,
        automatic_only: bool = True,
    ) -> list[RecoveryAttempt]:
        """Attempts, oldest first, filtered for the circuit breaker. ``automatic_only`` keeps those
        that acted: dry runs and skipped/blocked attempts are left out."""
        with self._reading() as conn:
            return queries.attempts(conn, fingerprint, host, since, automatic_only)

    def action_outcomes(self, fingerprint: str, action: str) -> tuple[int, int]:
        """(succeeded, failed) real (not dry-run) attempts of ``action`` on this fingerprint."""
        with self._reading() as conn:
            return queries.action_outcomes(conn, fingerprint, action)

    def retry_outcomes(
        self,
        fingerprint: str,
        action: str,
        *,
        limit: int = 20,
        settled_before: datetime | None = None,
        current: queries.SameRun | None = None,
    ) -> tuple[int, int]:
        """(succeeded, failed) plain retries of this failure (:func:`.queries.retry_outcomes`).

        :param fingerprint: the failure's fingerprint
        :param action: the action that retries the failed task
        :param limit: read at most this many of the latest attempts and occurrences
        :param settled_before: only attempts finished before this count (default: 15 minutes ago, so a
            retried run still in progress is not taken for a success)
        :param current: the try being diagnosed (its own earlier tries in this run count)
        """
        cutoff = settled_before or utcnow() - timedelta(minutes=15)
        # read as the schema is (no migration on this path: the tables it reads exist since revision
        # 0001, and a failing task's retry decision must not pay for Alembic)
        with self._available(), self.engine.connect().execution_options(**{READ_OPTION: True}) as conn:
            return queries.retry_outcomes(conn, fingerprint, action, max(1, min(limit, 200)), cutoff, current)

    # --- checkpoints -----------------------------------------------------------------------------

    def record_checkpoint(
        self, dag_id: str, task_id: str, run_id: str, state: dict[str, Any], host: str | None = None
    ) -> None:
        """Store a state snapshot recorded by user code (must be JSON-serialisable; spooled when the
        ledger is unavailable)."""
        payload = {
            "dag_id": dag_id,
            "task_id": task_id,
            "run_id": run_id,
            "host": host,
            "state": json.loads(json.dumps(state)),
            "recorded_at": utcnow().isoformat(),
        }
        self._write("record_checkpoint", payload)

    def latest_checkpoint(
        self, dag_id: str, task_id: str, run_id: str | None = None
    ) -> dict[str, Any] | None:
        """The state of the newest checkpoint of this task (in ``run_id``, or in any run)."""
        found = self.checkpoints(dag_id, task_id, run_id, limit=1)
        return found[0]["state"] if found else None

    def checkpoints(
        self,
        dag_id: str | None = None,
        task_id: str | None = None,
        run_id: str | None = None,
        limit: int = 50,
    ) -> list[CheckpointEntry]:
        """Checkpoints with their metadata, newest first."""
        with self._reading() as conn:
            return queries.checkpoints(conn, dag_id, task_id, run_id, limit)

    # --- escalation outbox -----------------------------------------------------------------------

    def enqueue_escalation(
        self, fingerprint: str, title: str, body: str, labels: list[str], kind: str = "escalate"
    ) -> int:
        """Put an escalation in the outbox; returns its id (0 when the ledger was unavailable and the
        escalation was spooled: it reaches the outbox on replay).

        :param kind: ``escalate`` (a person must look at it) or ``resolve`` (it was fixed: close the issue)
        """
        payload = {
            "fingerprint": fingerprint,
            "title": title,
            "body": body,
            "labels": list(labels),
            "created_at": utcnow().isoformat(),
            "kind": kind,
        }
        written, outbox_id = self._write("enqueue_escalation", payload)
        return int(outbox_id) if written else 0

    def pending_escalations(self, limit: int = 50) -> list[EscalationEntry]:
        """Escalations not sent yet, oldest first."""
        with self._reading() as conn:
            return queries.pending_escalations(conn, limit)

    def mark_escalated(self, outbox_id: int, reference: str) -> None:
        """Mark an outbox entry as sent, with the issue URL or report path (spooled when unavailable)."""
        self._write(
            "mark_escalated",
            {"outbox_id": int(outbox_id), "reference": reference, "sent_at": utcnow().isoformat()},
        )

    def mark_escalation_failed(self, outbox_id: int, error: str) -> None:
        """Count a failed delivery of an outbox entry; it stays pending."""
        self._write("escalation_failed", {"outbox_id": int(outbox_id), "error": error})

    # --- escalation delivery (answers needed: raise LedgerUnavailable, never spooled) -------------

    def due_escalations(
        self, now: datetime, limit: int = 100, fingerprint: str | None = None
    ) -> list[EscalationEntry]:
        """Pending outbox entries whose retry time has come, oldest first."""
        with self._reading() as conn:
            return escalations.due(conn, now, limit, fingerprint)

    def escalation_entry(self, outbox_id: int) -> EscalationEntry | None:
        """The outbox entry ``outbox_id``."""
        with self._reading() as conn:
            return escalations.entry(conn, outbox_id)

    def claim_escalation(self, fingerprint: str, owner: str, now: datetime, lease_seconds: float) -> bool:
        """Take the delivery lease of ``fingerprint``: of any number of concurrent callers, one gets True."""
        with self._writing() as conn:
            return escalations.claim(conn, fingerprint, owner, now, lease_seconds)

    def release_escalation(self, fingerprint: str, owner: str) -> None:
        """Give back the delivery lease of ``fingerprint``."""
        with self._writing() as conn:
            escalations.release(conn, fingerprint, owner)

    def escalation_issue(self, fingerprint: str) -> IssueRecord | None:
        """What the ledger knows of the fingerprint's GitHub issue."""
        with self._reading() as conn:
            return escalations.issue(conn, fingerprint)

    def update_escalation_issue(self, fingerprint: str, owner: str, now: datetime, **values: Any) -> bool:
        """Record what a delivery did to the fingerprint's issue (only while ``owner`` holds its lease)."""
        clean = cast("dict[str, Any]", redact_data(values))
        with self._writing() as conn:
            return escalations.update_issue(conn, fingerprint, owner, now, clean)

    def escalation_summaries_due(self, cutoff: datetime, limit: int = 100) -> list[str]:
        """Fingerprints with occurrences to report on their issue, last commented before ``cutoff``."""
        with self._reading() as conn:
            return escalations.summaries_due(conn, cutoff, limit)

    def retry_escalation_later(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
        """Count a failed delivery; the entry stays pending until ``next_attempt_at``."""
        with self._writing() as conn:
            escalations.retry_later(conn, outbox_id, str(redact_data(error)), next_attempt_at)

    # --- shadow findings -------------------------------------------------------------------------

    def record_shadow_error(self, finding: ShadowError) -> tuple[int, bool]:
        """Store a finding, deduplicated by ``finding.dedup_key`` (type, run, task, resource); returns
        (row id, raised). Raised: seen for the first time, or acknowledged/resolved before and changed
        since (:func:`~qubinode_recovery_provider.store.ops.finding_signature`: severity and evidence,
        numbers aside), which opens it again. When the ledger is unavailable the finding is spooled and
        ``(0, True)`` returned, so that the caller escalates rather than stays silent."""
        written, result = self._write("record_shadow_error", {"finding": finding.model_dump(mode="json")})
        return result if written else (0, True)

    def shadow_errors(
        self,
        since: datetime | None = None,
        limit: int = 50,
        state: str | None = None,
        finding_type: str | None = None,
    ) -> list[ShadowEntry]:
        """Recorded findings, most recently seen first (only those in ``state`` / of ``finding_type``)."""
        with self._reading() as conn:
            return queries.shadow_errors(conn, since, limit, state, finding_type)

    def shadow_page(
        self, where: queries.FindingFilter, offset: int = 0, limit: int = 50
    ) -> tuple[list[ShadowEntry], int]:
        """One page of findings that match ``where``, most recently seen first, and the total."""
        with self._reading() as conn:
            return queries.shadow_page(conn, where, offset, limit)

    def shadow_error(self, finding_id: int) -> ShadowEntry | None:
        """One recorded finding by its id."""
        with self._reading() as conn:
            return queries.shadow_error(conn, finding_id)

    def set_finding_state(self, finding_id: int, state: str, note: str | None = None) -> bool:
        """Acknowledge (``acknowledged``), resolve (``resolved``) or reopen (``open``) a finding; False
        when there is no such finding. Not spooled: the person asking sees at once whether it worked.

        :raises LedgerUnavailable: when the ledger cannot be written.
        """
        if state not in ops.FINDING_STATES:
            raise ValueError(f"state must be one of {', '.join(ops.FINDING_STATES)}")
        payload = {"id": int(finding_id), "state": state, "note": note, "at": utcnow().isoformat()}
        with self._writing() as conn:
            return bool(ops.set_finding_state(conn, payload))

    # --- scan watermarks -------------------------------------------------------------------------

    def watermark(self, source: str) -> dict[str, Any] | None:
        """Where the scan of ``source`` stopped last time (None: never scanned, or unreadable)."""
        with self._reading() as conn:
            return queries.watermark(conn, source)

    def set_watermark(self, source: str, position: dict[str, Any]) -> None:
        """Remember where the scan of ``source`` stopped (spooled when the ledger is down)."""
        self._write("set_watermark", {"source": source, "position": position, "at": utcnow().isoformat()})

    # --- retention -------------------------------------------------------------------------------

    def purge(self, older_than_days: int | None = None) -> int:
        """Delete rows older than ``older_than_days`` (default: ``retention_days``); returns how many.

        Incidents go when last seen before the cutoff (unless being recovered), with their DAGs, hosts
        and diagnoses; pending attempts and unsent escalations are kept.
        """
        days = config.get_int("retention_days") if older_than_days is None else older_than_days
        if days < 0:
            raise ValueError("older_than_days must be >= 0")
        cutoff = utcnow() - timedelta(days=days)
        with self._writing() as conn:
            return queries.purge(conn, cutoff)
