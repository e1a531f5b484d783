"""The ledger's read side, and the retention purge: statements :class:`~.ledger.Ledger` runs directly on
a connection, never through the spool (the spooled writes are in :mod:`.ops`).

Rows become models where one exists (:class:`Incident`, :class:`RecoveryAttempt`) and JSON-ready
TypedDicts otherwise; their keys are what the CLI's JSON output prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict

import sqlalchemy as sa

from qubinode_recovery_provider.models import AttemptOutcome, Incident, IncidentState, RecoveryAttempt
from qubinode_recovery_provider.store import ops
from qubinode_recovery_provider.store import schema as t

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

#: Attempt outcomes that did not act on anything; the circuit breaker ignores them.
NON_ACTING_OUTCOMES = (
    AttemptOutcome.SKIPPED.value,
    AttemptOutcome.BLOCKED.value,
    AttemptOutcome.DRY_RUN.value,
)


class CheckpointEntry(TypedDict):
    """A checkpoint with its metadata (:meth:`Ledger.checkpoints`)."""

    id: int
    dag_id: str
    task_id: str
    run_id: str
    host: str | None
    state: dict[str, Any]
    recorded_at: str | None


class EscalationEntry(TypedDict):
    """An entry of the escalation outbox (:meth:`Ledger.pending_escalations`)."""

    id: int
    fingerprint: str
    title: str
    body: str
    labels: list[str]
    status: str
    reference: str | None
    tries: int
    last_error: str | None
    created_at: str | None
    sent_at: str | None
    kind: str
    next_attempt_at: str | None


class ShadowEntry(TypedDict):
    """A recorded shadow finding (:meth:`Ledger.shadow_errors`)."""

    id: int
    type: str
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    resource: str | None
    confidence: float
    severity: str
    seen_count: int
    first_seen: str | None
    last_seen: str | None
    evidence: list[Any]
    inferred: bool
    state: str
    state_changed_at: str | None
    state_note: str | None
    raise_count: int


class DiagnosisEntry(TypedDict):
    """One stored diagnosis of an incident, with the failure it came from."""

    id: int
    occurred_at: str | None
    dag_id: str | None
    task_id: str | None
    run_id: str | None
    try_number: int | None
    host: str | None
    diagnosis: dict[str, Any]
    exception_type: str | None
    exception_text: str


class IncidentDetail(TypedDict, total=False):
    """An incident with its latest records (:meth:`Ledger.incident_detail`): every key, or none (``{}``)
    when there is no such incident. ``incident``, ``plans`` and ``attempts`` are the JSON dumps of
    :class:`Incident`, :class:`RecoveryPlan` and :class:`RecoveryAttempt`."""

    incident: dict[str, Any]
    diagnoses: list[DiagnosisEntry]
    plans: list[dict[str, Any]]
    attempts: list[dict[str, Any]]
    escalations: list[EscalationEntry]
    checkpoints: list[CheckpointEntry]
    github_issue: str | None


# --- incidents ---------------------------------------------------------------------------------


def find_incident(conn: Connection, key: str | int) -> Row[Any] | None:
    """The ``qr_incidents`` row with this fingerprint, or this numeric id."""
    table = t.incidents
    if isinstance(key, int) and not isinstance(key, bool):
        return conn.execute(sa.select(table).where(table.c.id == key)).first()
    text = str(key).strip()
    row = conn.execute(sa.select(table).where(table.c.fingerprint == text)).first()
    if row is None and text.isdigit():
        row = conn.execute(sa.select(table).where(table.c.id == int(text))).first()
    return row


def get_incident(conn: Connection, key: str | int) -> Incident | None:
    """The incident with this fingerprint, or this numeric id."""
    row = find_incident(conn, key)
    return ops.incidents_from_rows(conn, [row])[0] if row is not None else None


def list_incidents(conn: Connection, state: IncidentState | None, limit: int) -> list[Incident]:
    """Incidents, most recently seen first."""
    query = sa.select(t.incidents).order_by(t.incidents.c.last_seen.desc(), t.incidents.c.id.desc())
    if state is not None:
        query = query.where(t.incidents.c.state == IncidentState(state).value)
    return ops.incidents_from_rows(conn, list(conn.execute(query.limit(limit))))


def incident_detail(conn: Connection, key: str | int, limit: int) -> IncidentDetail:
    """The incident with its latest diagnoses, plans, attempts, escalations and the checkpoints of its
    runs; ``{}`` when there is no such incident."""
    row = find_incident(conn, key)
    if row is None:
        return {}
    incident = ops.incidents_from_rows(conn, [row])[0]
    fp = incident.fingerprint
    d, p, a, o = t.diagnoses, t.plans, t.attempts, t.escalation_outbox
    diag_rows = list(
        conn.execute(
            sa.select(d)
            .where(d.c.fingerprint == fp)
            .order_by(d.c.occurred_at.desc(), d.c.id.desc())
            .limit(limit)
        )
    )
    plan_q = sa.select(p).where(p.c.fingerprint == fp).order_by(p.c.created_at.desc(), p.c.id.desc())
    attempt_q = sa.select(a).where(a.c.fingerprint == fp).order_by(a.c.started_at.desc(), a.c.id.desc())
    outbox_q = sa.select(o).where(o.c.fingerprint == fp).order_by(o.c.id.desc())
    return {
        "incident": incident.model_dump(mode="json"),
        "diagnoses": [_diagnosis_entry(r) for r in diag_rows],
        "plans": [r.plan for r in conn.execute(plan_q.limit(limit))],
        "attempts": [_attempt(r).model_dump(mode="json") for r in conn.execute(attempt_q.limit(limit))],
        "escalations": [outbox_entry(r) for r in conn.execute(outbox_q.limit(limit))],
        "checkpoints": _run_checkpoints(conn, diag_rows, limit),
        "github_issue": conn.execute(
            sa.select(t.escalation_issues.c.url).where(t.escalation_issues.c.fingerprint == fp)
        ).scalar(),
    }


def _run_checkpoints(conn: Connection, diag_rows: list[Row[Any]], limit: int) -> list[CheckpointEntry]:
    """The newest checkpoints of the runs the diagnoses name."""
    c = t.checkpoints
    runs = {(r.dag_id, r.run_id) for r in diag_rows if r.dag_id and r.run_id}
    if not runs:
        return []
    where = sa.or_(*[sa.and_(c.c.dag_id == dag, c.c.run_id == run) for dag, run in sorted(runs)])
    query = sa.select(c).where(where).order_by(c.c.recorded_at.desc(), c.c.id.desc()).limit(limit)
    return [_checkpoint(r) for r in conn.execute(query)]


def newest_diagnosis(
    conn: Connection,
    fingerprint: str,
    *,
    dag_id: str | None,
    run_id: str | None,
    task_id: str | None,
    same_run_only: bool,
) -> Row[Any, Any, Any] | None:
    """The ``(id, host, diagnosis)`` of the newest diagnosis stored under ``fingerprint`` for this DAG,
    run and task (each only when given); with none, the newest of the fingerprint, unless
    ``same_run_only``."""
    d = t.diagnoses
    newest = sa.select(d.c.id, d.c.host, d.c.diagnosis).where(d.c.fingerprint == fingerprint)
    newest = newest.order_by(d.c.occurred_at.desc(), d.c.id.desc()).limit(1)
    same = newest
    for column, value in ((d.c.dag_id, dag_id), (d.c.run_id, run_id), (d.c.task_id, task_id)):
        if value:
            same = same.where(column == value)
    row = conn.execute(same).first()
    if row is None and not same_run_only:
        row = conn.execute(newest).first()
    return row


@dataclass(frozen=True)
class IncidentFilter:
    """Which incidents a page shows (every given field must hold).

    :param state: the incident state
    :param root_cause: the category (root cause)
    :param dag_id: a DAG the incident was seen in
    :param since: last seen at or after this time
    :param until: last seen before this time
    """

    state: str | None = None
    root_cause: str | None = None
    dag_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def incident_page(
    conn: Connection, where: IncidentFilter, offset: int, limit: int
) -> tuple[list[Incident], int]:
    """One page of incidents, most recently seen first, and how many match in all."""
    inc = t.incidents
    conditions: list[Any] = []
    for column, value in ((inc.c.state, where.state), (inc.c.root_cause, where.root_cause)):
        if value is not None:
            conditions.append(column == value)
    if where.dag_id is not None:
        in_dag = sa.select(t.incident_dags.c.incident_id).where(t.incident_dags.c.dag_id == where.dag_id)
        conditions.append(inc.c.id.in_(in_dag))
    if where.since is not None:
        conditions.append(inc.c.last_seen >= where.since)
    if where.until is not None:
        conditions.append(inc.c.last_seen < where.until)
    rows, total = _page(conn, inc, conditions, offset, limit)
    return ops.incidents_from_rows(conn, rows), total


def _page(
    conn: Connection, table: sa.Table, conditions: list[Any], offset: int, limit: int
) -> tuple[list[Row[Any]], int]:
    """The rows of ``table`` that meet ``conditions``, most recently seen first, and how many in all."""
    total = conn.execute(sa.select(sa.func.count()).select_from(table).where(*conditions)).scalar() or 0
    query = (
        sa.select(table)
        .where(*conditions)
        .order_by(table.c.last_seen.desc(), table.c.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(conn.execute(query)), int(total)


def task_fingerprint(conn: Connection, dag_id: str, task_id: str, run_id: str | None) -> str | None:
    """The fingerprint of the newest diagnosis of this task (in this run, when given)."""
    d = t.diagnoses
    query = sa.select(d.c.fingerprint).where(d.c.dag_id == dag_id, d.c.task_id == task_id)
    if run_id is not None:
        query = query.where(d.c.run_id == run_id)
    return conn.execute(query.order_by(d.c.occurred_at.desc(), d.c.id.desc()).limit(1)).scalar()


def top_incidents(conn: Connection, limit: int) -> list[Incident]:
    """The incidents seen most often."""
    inc = t.incidents
    query = sa.select(inc).order_by(inc.c.occurrences.desc(), inc.c.id.desc()).limit(limit)
    return ops.incidents_from_rows(conn, list(conn.execute(query)))


def unexplained_texts(conn: Connection, limit: int) -> list[str]:
    """The failure texts of the newest diagnoses no pattern explained (root cause ``unknown``)."""
    d = t.diagnoses
    query = (
        sa.select(d.c.event)
        .where(d.c.root_cause == "unknown")
        .order_by(d.c.occurred_at.desc(), d.c.id.desc())
        .limit(limit)
    )
    texts = []
    for (event,) in conn.execute(query):
        event = event or {}
        text = "\n".join([*(event.get("log_tail") or []), event.get("exception_text") or ""]).strip()
        if text:
            texts.append(text)
    return texts


# --- attempts ------------------------------------------------------------------------------------


def get_attempt(conn: Connection, idempotency_key: str) -> RecoveryAttempt | None:
    """The attempt claimed under ``idempotency_key``."""
    query = sa.select(t.attempts).where(t.attempts.c.idempotency_key == idempotency_key)
    row = conn.execute(query).first()
    return _attempt(row) if row is not None else None


def attempts(
    conn: Connection,
    fingerprint: str | None,
    host: str | None,
    since: datetime | None,
    automatic_only: bool,
) -> list[RecoveryAttempt]:
    """Attempts, oldest first; ``automatic_only`` leaves out dry runs and attempts that did not act."""
    table = t.attempts
    query = sa.select(table).order_by(table.c.started_at, table.c.id)
    if fingerprint is not None:
        query = query.where(table.c.fingerprint == fingerprint)
    if host is not None:
        query = query.where(table.c.host == host)
    if since is not None:
        query = query.where(table.c.started_at >= since)
    if automatic_only:
        query = query.where(table.c.dry_run.is_(False), table.c.outcome.not_in(NON_ACTING_OUTCOMES))
    return [_attempt(row) for row in conn.execute(query)]


def action_outcomes(conn: Connection, fingerprint: str, action: str) -> tuple[int, int]:
    """(succeeded, failed) real (not dry-run) attempts of ``action`` on this fingerprint."""
    table = t.attempts
    query = (
        sa.select(table.c.outcome, sa.func.count())
        .where(table.c.fingerprint == fingerprint, table.c.action == action, table.c.dry_run.is_(False))
        .group_by(table.c.outcome)
    )
    counts = {outcome: n for outcome, n in conn.execute(query)}
    return counts.get(AttemptOutcome.SUCCEEDED.value, 0), counts.get(AttemptOutcome.FAILED.value, 0)


@dataclass(frozen=True)
class SameRun:
    """The task instance being diagnosed, to find its own earlier tries in the ledger."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int


def retry_outcomes(
    conn: Connection,
    fingerprint: str,
    action: str,
    limit: int,
    settled_before: datetime,
    current: SameRun | None = None,
) -> tuple[int, int]:
    """(succeeded, failed) plain retries of failures with ``fingerprint``, from the ledger's own rows.

    A retry is an attempt of ``action`` (the recovery DAG's retry of the failed task) that really ran
    (not a dry run), finished before ``settled_before``, without a longer timeout: it succeeded when the
    same task did not fail again in that run afterwards, else it failed. The task's own retries count
    as failed when a later try of the same run failed with the same fingerprint; ``current`` (the try
    being diagnosed) counts as such a try. Only the ``limit`` latest attempts and occurrences are read;
    every query uses an index (fingerprint; DAG, task and run).
    """
    succeeded = failed = 0
    for args, outcome in _latest_retries(conn, fingerprint, action, limit, settled_before):
        if outcome == AttemptOutcome.SUCCEEDED.value and not _failed_again(conn, args):
            succeeded += 1
        else:
            failed += 1
    return succeeded, failed + _own_retries_failed(conn, fingerprint, limit, current)


def _latest_retries(
    conn: Connection, fingerprint: str, action: str, limit: int, settled_before: datetime
) -> list[tuple[dict[str, Any], str]]:
    table = t.attempts
    query = (
        sa.select(table.c.action_args, table.c.outcome, table.c.started_at)
        .where(
            table.c.fingerprint == fingerprint,
            table.c.action == action,
            table.c.dry_run.is_(False),
            table.c.outcome.in_([AttemptOutcome.SUCCEEDED.value, AttemptOutcome.FAILED.value]),
            table.c.finished_at.is_not(None),
            table.c.finished_at < settled_before,
        )
        .order_by(table.c.started_at.desc(), table.c.id.desc())
        .limit(limit)
    )
    out = []
    for args, outcome, started in conn.execute(query):
        if not isinstance(args, dict) or args.get("execution_timeout_seconds"):
            continue  # a retry with a longer timeout is not a plain retry
        out.append(({**args, "_started_at": started}, str(outcome)))
    return out


def _failed_again(conn: Connection, args: dict[str, Any]) -> bool:
    """Did a task the retry cleared fail again in that run after the retry started?"""
    task_ids = [str(x) for x in (args.get("task_ids") or [])][:100]
    dag_id, run_id = args.get("dag_id"), args.get("run_id")
    if not (dag_id and run_id and task_ids):
        return True  # an attempt that does not say what it retried proves nothing
    table = t.diagnoses
    query = (
        sa.select(table.c.id)
        .where(
            table.c.dag_id == str(dag_id),
            table.c.task_id.in_(task_ids),
            table.c.run_id == str(run_id),
            table.c.occurred_at >= args["_started_at"],
        )
        .limit(1)
    )
    return conn.execute(query).first() is not None


def _own_retries_failed(conn: Connection, fingerprint: str, limit: int, current: SameRun | None) -> int:
    """Earlier occurrences of ``fingerprint`` that a later try of the same run repeated."""
    d = t.diagnoses
    latest = (
        sa.select(d.c.id, d.c.dag_id, d.c.task_id, d.c.run_id, d.c.try_number)
        .where(d.c.fingerprint == fingerprint, d.c.try_number.is_not(None))
        .order_by(d.c.occurred_at.desc(), d.c.id.desc())
        .limit(limit)
        .subquery()
    )
    later = d.alias("later")
    query = sa.select(sa.func.count(sa.distinct(latest.c.id))).where(
        later.c.fingerprint == fingerprint,
        later.c.dag_id == latest.c.dag_id,
        later.c.task_id == latest.c.task_id,
        later.c.run_id == latest.c.run_id,
        later.c.try_number > latest.c.try_number,
    )
    repeated = int(conn.execute(query).scalar() or 0)
    if current is not None:
        earlier = sa.select(d.c.id).where(
            d.c.fingerprint == fingerprint,
            d.c.dag_id == current.dag_id,
            d.c.task_id == current.task_id,
            d.c.run_id == current.run_id,
            d.c.try_number < current.try_number,
        )
        repeated += 1 if conn.execute(earlier.limit(1)).first() is not None else 0
    return repeated


# --- checkpoints, escalations, shadow findings ----------------------------------------------------


def checkpoints(
    conn: Connection, dag_id: str | None, task_id: str | None, run_id: str | None, limit: int
) -> list[CheckpointEntry]:
    """Checkpoints with their metadata, newest first."""
    table = t.checkpoints
    query = sa.select(table).order_by(table.c.recorded_at.desc(), table.c.id.desc()).limit(limit)
    for column, value in (("dag_id", dag_id), ("task_id", task_id), ("run_id", run_id)):
        if value is not None:
            query = query.where(table.c[column] == value)
    return [_checkpoint(row) for row in conn.execute(query)]


def pending_escalations(conn: Connection, limit: int) -> list[EscalationEntry]:
    """Escalations not sent yet, oldest first."""
    table = t.escalation_outbox
    query = sa.select(table).where(table.c.status == "pending").order_by(table.c.id).limit(limit)
    return [outbox_entry(row) for row in conn.execute(query)]


def shadow_errors(
    conn: Connection,
    since: datetime | None,
    limit: int,
    state: str | None = None,
    finding_type: str | None = None,
) -> list[ShadowEntry]:
    """Recorded findings, most recently seen first."""
    table = t.shadow_errors
    query = sa.select(table).order_by(table.c.last_seen.desc(), table.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(table.c.last_seen >= since)
    if state is not None:
        query = query.where(table.c.state == state)
    if finding_type is not None:
        query = query.where(table.c.type == finding_type)
    return [_shadow(row) for row in conn.execute(query)]


@dataclass(frozen=True)
class FindingFilter:
    """Which shadow findings a page shows (every given field must hold).

    :param state: open, acknowledged or resolved
    :param finding_type: the finding's type
    :param dag_id: the DAG it was found in
    :param resource: the host or resource it names
    """

    state: str | None = None
    finding_type: str | None = None
    dag_id: str | None = None
    resource: str | None = None


def shadow_page(
    conn: Connection, where: FindingFilter, offset: int, limit: int
) -> tuple[list[ShadowEntry], int]:
    """One page of findings, most recently seen first, and how many match in all."""
    table = t.shadow_errors
    conditions = [
        column == value
        for column, value in (
            (table.c.state, where.state),
            (table.c.type, where.finding_type),
            (table.c.dag_id, where.dag_id),
            (table.c.resource, where.resource),
        )
        if value is not None
    ]
    rows, total = _page(conn, table, conditions, offset, limit)
    return [_shadow(row) for row in rows], total


def shadow_error(conn: Connection, finding_id: int) -> ShadowEntry | None:
    """One recorded finding."""
    row = conn.execute(sa.select(t.shadow_errors).where(t.shadow_errors.c.id == finding_id)).first()
    return _shadow(row) if row is not None else None


def watermark(conn: Connection, source: str) -> dict[str, Any] | None:
    """A scan source's stored position."""
    table = t.scan_watermarks
    value = conn.execute(sa.select(table.c.position).where(table.c.source == source)).scalar()
    return value if isinstance(value, dict) else None


# --- retention -----------------------------------------------------------------------------------


def purge(conn: Connection, cutoff: datetime) -> int:
    """Delete what is older than ``cutoff`` (see :meth:`Ledger.purge`); returns how many rows."""
    inc = t.incidents
    stale = sa.select(inc.c.id).where(inc.c.last_seen < cutoff, inc.c.state != IncidentState.RECOVERING.value)
    stale_ids = [row.id for row in conn.execute(stale)]
    deletes = [
        t.diagnoses.delete().where(
            sa.or_(t.diagnoses.c.incident_id.in_(stale_ids), t.diagnoses.c.occurred_at < cutoff)
        ),
        t.incident_dags.delete().where(t.incident_dags.c.incident_id.in_(stale_ids)),
        t.incident_hosts.delete().where(t.incident_hosts.c.incident_id.in_(stale_ids)),
        inc.delete().where(inc.c.id.in_(stale_ids)),
        t.plans.delete().where(t.plans.c.created_at < cutoff),
        t.attempts.delete().where(
            t.attempts.c.started_at < cutoff, t.attempts.c.outcome != AttemptOutcome.PENDING.value
        ),
        t.checkpoints.delete().where(t.checkpoints.c.recorded_at < cutoff),
        t.escalation_outbox.delete().where(
            t.escalation_outbox.c.status == "sent", t.escalation_outbox.c.created_at < cutoff
        ),
        t.shadow_errors.delete().where(t.shadow_errors.c.last_seen < cutoff),
    ]
    deleted = sum(conn.execute(stmt).rowcount for stmt in deletes)
    conn.execute(t.applied_events.delete().where(t.applied_events.c.applied_at < cutoff))
    return deleted


# --- rows ----------------------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _attempt(row: Row[Any]) -> RecoveryAttempt:
    return RecoveryAttempt(
        id=row.id,
        incident_fingerprint=row.fingerprint,
        idempotency_key=row.idempotency_key,
        action=row.action,
        action_args=row.action_args or {},
        dry_run=row.dry_run,
        outcome=row.outcome,
        detail=row.detail,
        host=row.host,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


def _checkpoint(row: Row[Any]) -> CheckpointEntry:
    return {
        "id": row.id,
        "dag_id": row.dag_id,
        "task_id": row.task_id,
        "run_id": row.run_id,
        "host": row.host,
        "state": row.state,
        "recorded_at": _iso(row.recorded_at),
    }


def outbox_entry(row: Row[Any]) -> EscalationEntry:
    """An outbox row as an :class:`EscalationEntry`."""
    return {
        "id": row.id,
        "fingerprint": row.fingerprint,
        "title": row.title,
        "body": row.body,
        "labels": list(row.labels or []),
        "status": row.status,
        "reference": row.reference,
        "tries": row.tries,
        "last_error": row.last_error,
        "created_at": _iso(row.created_at),
        "sent_at": _iso(row.sent_at),
        "kind": row.kind,
        "next_attempt_at": _iso(row.next_attempt_at),
    }


def _shadow(row: Row[Any]) -> ShadowEntry:
    return {
        "id": row.id,
        "type": row.type,
        "dag_id": row.dag_id,
        "run_id": row.run_id,
        "task_id": row.task_id,
        "resource": row.resource,
        "confidence": row.confidence,
        "severity": row.severity,
        "seen_count": row.seen_count,
        "first_seen": _iso(row.first_seen),
        "last_seen": _iso(row.last_seen),
        "evidence": (row.finding or {}).get("evidence", []),
        "inferred": bool((row.finding or {}).get("inferred", False)),
        "state": row.state,
        "state_changed_at": _iso(row.state_changed_at),
        "state_note": row.state_note,
        "raise_count": row.raise_count,
    }


def _diagnosis_entry(row: Row[Any]) -> DiagnosisEntry:
    return {
        "id": row.id,
        "occurred_at": _iso(row.occurred_at),
        "dag_id": row.dag_id,
        "task_id": row.task_id,
        "run_id": row.run_id,
        "try_number": row.try_number,
        "host": row.host,
        "diagnosis": row.diagnosis,
        "exception_type": (row.event or {}).get("exception_type"),
        "exception_text": (row.event or {}).get("exception_text", ""),
    }
