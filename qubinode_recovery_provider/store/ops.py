"""The ledger's write operations, each a function ``(connection, payload) -> result`` run inside one
transaction.

Direct writes and spool replays go through the same :func:`apply`, which first claims the event's
uuid in ``qr_applied_events``: an event whose uuid is there already (it was committed although the
client saw an error, or another process replayed it first) is skipped, so every event lands exactly
once. Payloads are plain JSON (the spool stores them as they are).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from qubinode_recovery_provider.models import (
    AttemptOutcome,
    Diagnosis,
    FailureEvent,
    Incident,
    IncidentState,
    RecoveryPlan,
    ShadowError,
    utcnow,
)
from qubinode_recovery_provider.store import schema as t

MAX_LOG_TAIL_LINES = 200

Op = Callable[[Connection, dict[str, Any]], Any]


def upsert(conn: Connection, table: sa.Table) -> Any:
    """The dialect's ``INSERT`` construct with ``on_conflict_do_update`` / ``_do_nothing``."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def claim(conn: Connection, event_id: str, op: str) -> bool:
    """Record that event ``event_id`` is being applied; False when it was applied before."""
    stmt = (
        upsert(conn, t.applied_events)
        .values(event_id=event_id, op=op, applied_at=utcnow())
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(t.applied_events.c.event_id)
    )
    return conn.execute(stmt).first() is not None


def apply(conn: Connection, op: str, event_id: str, payload: dict[str, Any]) -> tuple[bool, Any]:
    """Apply one write exactly once; returns (applied, result).

    :raises KeyError: for an unknown ``op``.
    """
    func = OPS[op]
    if not claim(conn, event_id, op):
        return False, None
    return True, func(conn, payload)


# --- incidents ---------------------------------------------------------------------------------


def _later(new: Any, old: Any) -> Any:
    return sa.case((new > old, new), else_=old)


def _upsert_incident(conn: Connection, diagnosis: Diagnosis, seen: datetime) -> Row[Any]:
    table = t.incidents
    stmt = upsert(conn, table).values(
        fingerprint=diagnosis.fingerprint,
        root_cause=diagnosis.root_cause.value,
        summary=diagnosis.summary,
        state=IncidentState.OPEN.value,
        occurrences=1,
        first_seen=seen,
        last_seen=seen,
        updated_at=utcnow(),
    )
    new, cur = stmt.excluded, table.c
    is_latest = new.last_seen >= cur.last_seen
    stmt = stmt.on_conflict_do_update(
        index_elements=[cur.fingerprint],
        set_={
            "occurrences": cur.occurrences + 1,
            "first_seen": sa.case((new.first_seen < cur.first_seen, new.first_seen), else_=cur.first_seen),
            "last_seen": _later(new.last_seen, cur.last_seen),
            "root_cause": sa.case((is_latest, new.root_cause), else_=cur.root_cause),
            "summary": sa.case((is_latest, new.summary), else_=cur.summary),
            # the same failure after a fix is a regression: the incident opens again
            "state": sa.case(
                (cur.state == IncidentState.RESOLVED.value, IncidentState.OPEN.value), else_=cur.state
            ),
            "updated_at": new.updated_at,
        },
    ).returning(*table.c)
    return conn.execute(stmt).one()


def _add_members(
    conn: Connection, table: sa.Table, column: str, incident_id: int, values: Iterable[str]
) -> None:
    rows = [{"incident_id": incident_id, column: value} for value in sorted(set(values)) if value]
    if rows:
        conn.execute(upsert(conn, table).on_conflict_do_nothing(), rows)


def members(conn: Connection, table: sa.Table, column: str, incident_ids: list[int]) -> dict[int, list[str]]:
    """``incident id -> sorted values`` of ``qr_incident_dags`` or ``qr_incident_hosts``."""
    found: dict[int, list[str]] = {i: [] for i in incident_ids}
    if not incident_ids:
        return found
    col = table.c[column]
    query = sa.select(table.c.incident_id, col).where(table.c.incident_id.in_(incident_ids)).order_by(col)
    for incident_id, value in conn.execute(query):
        found[incident_id].append(value)
    return found


def incidents_from_rows(conn: Connection, rows: list[Row[Any]]) -> list[Incident]:
    """Build :class:`Incident` models (with their DAGs and hosts) from ``qr_incidents`` rows."""
    ids = [row.id for row in rows]
    dags = members(conn, t.incident_dags, "dag_id", ids)
    hosts = members(conn, t.incident_hosts, "host", ids)
    return [
        Incident(
            id=row.id,
            fingerprint=row.fingerprint,
            root_cause=row.root_cause,
            summary=row.summary,
            state=row.state,
            occurrences=row.occurrences,
            first_seen=row.first_seen,
            last_seen=row.last_seen,
            dag_ids=dags[row.id],
            hosts=hosts[row.id],
        )
        for row in rows
    ]


def _event_json(event: FailureEvent) -> dict[str, Any]:
    data = event.model_dump(mode="json")
    data["log_tail"] = data["log_tail"][-MAX_LOG_TAIL_LINES:]
    return data


def record_failure(conn: Connection, payload: dict[str, Any]) -> Incident:
    event = FailureEvent.model_validate(payload["event"])
    diagnosis = Diagnosis.model_validate(payload["diagnosis"])
    row = _upsert_incident(conn, diagnosis, event.occurred_at)
    _add_members(conn, t.incident_dags, "dag_id", row.id, [event.dag_id or diagnosis.dag_id or ""])
    _add_members(conn, t.incident_hosts, "host", row.id, [event.host or ""])
    _insert_diagnosis(conn, row.id, event, diagnosis, payload["diagnosis"])
    return incidents_from_rows(conn, [row])[0]


def record_diagnosis(conn: Connection, payload: dict[str, Any]) -> int:
    """Store a later diagnosis of a recorded incident (the recovery DAG's LLM second opinion) without
    counting an occurrence; 0 when the incident is not in the ledger."""
    event = FailureEvent.model_validate(payload["event"])
    diagnosis = Diagnosis.model_validate(payload["diagnosis"])
    found = conn.execute(
        sa.select(t.incidents.c.id).where(t.incidents.c.fingerprint == diagnosis.fingerprint)
    ).first()
    if found is None:
        return 0
    _insert_diagnosis(conn, found.id, event, diagnosis, payload["diagnosis"])
    return 1


def _insert_diagnosis(
    conn: Connection, incident_id: int, event: FailureEvent, diagnosis: Diagnosis, raw: dict[str, Any]
) -> None:
    conn.execute(
        t.diagnoses.insert().values(
            incident_id=incident_id,
            fingerprint=diagnosis.fingerprint,
            root_cause=diagnosis.root_cause.value,
            confidence=diagnosis.confidence,
            severity=diagnosis.severity.value,
            retryable=diagnosis.retryable,
            primary_pattern=diagnosis.primary_pattern,
            dag_id=event.dag_id or diagnosis.dag_id,
            task_id=event.task_id or diagnosis.task_id,
            run_id=event.run_id or diagnosis.run_id,
            try_number=event.try_number,
            host=event.host,
            occurred_at=event.occurred_at,
            diagnosis=raw,  # validated by the caller; stored as the writer dumped it
            event=_event_json(event),
        )
    )


def set_incident_state(conn: Connection, payload: dict[str, Any]) -> int:
    state = IncidentState(payload["state"])
    stmt = (
        t.incidents.update()
        .where(t.incidents.c.fingerprint == payload["fingerprint"])
        .values(state=state.value, updated_at=utcnow())
    )
    return conn.execute(stmt).rowcount


# --- plans and attempts ------------------------------------------------------------------------


def record_plan(conn: Connection, payload: dict[str, Any]) -> int:
    plan = RecoveryPlan.model_validate(payload["plan"])
    recommended = plan.recommended
    stmt = t.plans.insert().values(
        fingerprint=plan.fingerprint,
        root_cause=plan.root_cause.value,
        recommended_type=recommended.type.value if recommended else None,
        dag_id=plan.dag_id,
        task_id=plan.task_id,
        run_id=plan.run_id,
        created_at=plan.created_at,
        plan=plan.model_dump(mode="json"),
    )
    return int(conn.execute(stmt.returning(t.plans.c.id)).scalar_one())


def finish_attempt(conn: Connection, payload: dict[str, Any]) -> int:
    outcome = AttemptOutcome(payload["outcome"])
    stmt = (
        t.attempts.update()
        .where(t.attempts.c.idempotency_key == payload["idempotency_key"])
        .values(
            outcome=outcome.value,
            detail=str(payload.get("detail", "")),
            finished_at=datetime.fromisoformat(payload["finished_at"]),
        )
    )
    return conn.execute(stmt).rowcount


# --- checkpoints, escalations, shadow findings ------------------------------------------------


def record_checkpoint(conn: Connection, payload: dict[str, Any]) -> int:
    stmt = t.checkpoints.insert().values(
        dag_id=payload["dag_id"],
        task_id=payload["task_id"],
        run_id=payload["run_id"],
        host=payload.get("host"),
        state=payload["state"],
        recorded_at=datetime.fromisoformat(payload["recorded_at"]),
    )
    return int(conn.execute(stmt.returning(t.checkpoints.c.id)).scalar_one())


def enqueue_escalation(conn: Connection, payload: dict[str, Any]) -> int:
    stmt = t.escalation_outbox.insert().values(
        fingerprint=payload["fingerprint"],
        title=payload["title"],
        body=payload["body"],
        labels=list(payload.get("labels", [])),
        status="pending",
        tries=0,
        created_at=datetime.fromisoformat(payload["created_at"]),
        kind=str(payload.get("kind") or "escalate"),
    )
    return int(conn.execute(stmt.returning(t.escalation_outbox.c.id)).scalar_one())


def mark_escalated(conn: Connection, payload: dict[str, Any]) -> int:
    table = t.escalation_outbox
    stmt = (
        table.update()
        .where(table.c.id == int(payload["outbox_id"]))
        .values(
            status="sent",
            reference=payload["reference"],
            tries=table.c.tries + 1,
            sent_at=datetime.fromisoformat(payload["sent_at"]),
        )
    )
    return conn.execute(stmt).rowcount


def escalation_failed(conn: Connection, payload: dict[str, Any]) -> int:
    table = t.escalation_outbox
    stmt = (
        table.update()
        .where(table.c.id == int(payload["outbox_id"]), table.c.status == "pending")
        .values(tries=table.c.tries + 1, last_error=str(payload.get("error", ""))[:4000])
    )
    return conn.execute(stmt).rowcount


def dedup_hash(finding: ShadowError) -> str:
    return hashlib.sha256(finding.dedup_key.encode("utf-8")).hexdigest()


FINDING_STATES = ("open", "acknowledged", "resolved")


def finding_signature(finding: ShadowError) -> str:
    """What makes a finding "changed": its severity and its evidence with every number (counts, times,
    sizes) blanked, so that a later scan seeing the same problem again is not a change."""
    text = "\n".join([finding.severity.value, *finding.evidence])
    blanked = []
    previous_digit = False
    for char in text:  # one pass: each run of digits becomes one '#'
        digit = char.isdigit()
        if not digit:
            blanked.append(char)
        elif not previous_digit:
            blanked.append("#")
        previous_digit = digit
    return hashlib.sha256("".join(blanked).encode("utf-8")).hexdigest()[:24]


def record_shadow_error(conn: Connection, payload: dict[str, Any]) -> tuple[int, bool]:
    """Insert a finding or count it again; returns (row id, raised). Raised: seen for the first time, or
    acknowledged/resolved before and changed since (it is open again then)."""
    finding = ShadowError.model_validate(payload["finding"])
    table = t.shadow_errors
    signature = finding_signature(finding)
    stmt = upsert(conn, table).values(
        dedup_hash=dedup_hash(finding),
        dedup_key=finding.dedup_key,
        type=finding.type.value,
        dag_id=finding.dag_id,
        run_id=finding.run_id,
        task_id=finding.task_id,
        resource=finding.resource,
        confidence=finding.confidence,
        severity=finding.severity.value,
        seen_count=1,
        first_seen=finding.detected_at,
        last_seen=finding.detected_at,
        finding=finding.model_dump(mode="json"),
        state="open",
        signature=signature,
        raise_count=1,
        last_raised=finding.detected_at,
    )
    new, cur = stmt.excluded, table.c
    reopen = sa.and_(cur.state != "open", sa.func.coalesce(cur.signature, "") != new.signature)
    stmt = stmt.on_conflict_do_update(
        index_elements=[cur.dedup_hash],
        set_={
            "seen_count": cur.seen_count + 1,
            "last_seen": _later(new.last_seen, cur.last_seen),
            "confidence": _later(new.confidence, cur.confidence),
            "finding": sa.case((new.last_seen >= cur.last_seen, new.finding), else_=cur.finding),
            "signature": new.signature,
            "state": sa.case((reopen, "open"), else_=cur.state),
            "state_changed_at": sa.case((reopen, new.last_seen), else_=cur.state_changed_at),
            "state_note": sa.case((reopen, "changed since it was set aside"), else_=cur.state_note),
            "raise_count": cur.raise_count + sa.case((reopen, 1), else_=0),
            "last_raised": sa.case((reopen, new.last_seen), else_=cur.last_raised),
        },
    ).returning(cur.id, cur.seen_count, cur.raise_count, cur.last_raised)
    row = conn.execute(stmt).one()
    raised = row.seen_count == 1 or (row.raise_count > 1 and row.last_raised == finding.detected_at)
    return int(row.id), bool(raised)


def set_finding_state(conn: Connection, payload: dict[str, Any]) -> int:
    """Acknowledge, resolve or reopen a finding (by row id); the number of rows changed (0: no such id)."""
    state = payload["state"]
    if state not in FINDING_STATES:
        raise ValueError(f"unknown finding state {state!r}")
    table = t.shadow_errors
    stmt = (
        table.update()
        .where(table.c.id == int(payload["id"]))
        .values(
            state=state,
            state_changed_at=datetime.fromisoformat(payload["at"]),
            state_note=payload.get("note"),
        )
    )
    return conn.execute(stmt).rowcount


def set_watermark(conn: Connection, payload: dict[str, Any]) -> None:
    """Store where a scan source stopped (``source`` -> ``position``)."""
    table = t.scan_watermarks
    stmt = upsert(conn, table).values(
        source=payload["source"],
        position=payload["position"],
        updated_at=datetime.fromisoformat(payload["at"]),
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.source],
        set_={"position": stmt.excluded.position, "updated_at": stmt.excluded.updated_at},
    )
    conn.execute(stmt)


OPS: dict[str, Op] = {
    "record_failure": record_failure,
    "record_diagnosis": record_diagnosis,
    "set_incident_state": set_incident_state,
    "record_plan": record_plan,
    "finish_attempt": finish_attempt,
    "record_checkpoint": record_checkpoint,
    "enqueue_escalation": enqueue_escalation,
    "mark_escalated": mark_escalated,
    "escalation_failed": escalation_failed,
    "record_shadow_error": record_shadow_error,
    "set_finding_state": set_finding_state,
    "set_watermark": set_watermark,
}
