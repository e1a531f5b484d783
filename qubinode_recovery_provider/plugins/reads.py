"""What the recovery UI shows, read through the runtime's ledger (the same typed reads as the CLI).

Every function returns JSON-ready data that has passed the project's one redaction step
(:func:`~qubinode_recovery_provider.redaction.redact_data`); the pages and the JSON API render only
that. The approval waiting for a person is read from Airflow's metadata database (the API server's
own session): the ``approve`` task of a recovery run for the incident's fingerprint in ``awaiting_input``.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from qubinode_recovery_provider.redaction import redact_data

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis import FailureAnalyzer
    from qubinode_recovery_provider.store import Ledger
    from qubinode_recovery_provider.store.queries import FindingFilter, IncidentFilter

log = logging.getLogger(__name__)

#: The recovery DAG's approval task (``dags/qubinode_failure_recovery.py``).
APPROVAL_TASK_ID = "approve"
#: Unexplained failures the pattern page groups (newest first).
UNEXPLAINED_SAMPLE = 500


def redacted(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` through the one redaction step."""
    result = redact_data(data)
    assert isinstance(result, dict)
    return result


def _paged(items: list[Any], total: int, page: int, per_page: int) -> dict[str, Any]:
    return {
        "items": items,
        "total": total,
        "page": page,
        "per_page": per_page,
        "pages": max(1, math.ceil(total / per_page)),
    }


def incidents(ledger: Ledger, where: IncidentFilter, page: int, per_page: int) -> dict[str, Any]:
    """One page of incidents that match ``where``."""
    rows, total = ledger.incident_page(where, (page - 1) * per_page, per_page)
    return redacted(_paged([i.model_dump(mode="json") for i in rows], total, page, per_page))


def findings(ledger: Ledger, where: FindingFilter, page: int, per_page: int) -> dict[str, Any]:
    """One page of shadow findings that match ``where``."""
    rows, total = ledger.shadow_page(where, (page - 1) * per_page, per_page)
    return redacted(_paged(list(rows), total, page, per_page))


def finding(ledger: Ledger, finding_id: int) -> dict[str, Any] | None:
    """One shadow finding."""
    entry = ledger.shadow_error(finding_id)
    return redacted(dict(entry)) if entry is not None else None


def incident(
    ledger: Ledger, key: str | int, limit: int = 20, *, verbose: bool = False
) -> dict[str, Any] | None:
    """An incident with its latest diagnosis (evidence, context, LLM opinion), plans, attempts,
    escalations, GitHub issue and the approval waiting for a person, if any. Each diagnosis shows
    its first few actions and commands and each plan its first few manual steps, all of them with
    ``verbose`` (:mod:`~qubinode_recovery_provider.output_limits`)."""
    from qubinode_recovery_provider.output_limits import OutputLimits, incident_data

    detail = incident_data(ledger.incident_detail(key, limit), OutputLimits.configured(verbose=verbose))
    if not detail:
        return None
    data: dict[str, Any] = dict(detail)
    latest = detail["diagnoses"][0] if detail["diagnoses"] else None
    data["latest"] = latest
    data["evidence"] = _evidence(latest)
    data["approval"] = pending_approval(detail["incident"]["fingerprint"])
    return redacted(data)


def _evidence(entry: Any) -> list[dict[str, Any]]:
    """The lines that decided the diagnosis: each matched pattern with its line."""
    if not entry:
        return []
    matches = (entry.get("diagnosis") or {}).get("matched_patterns") or []
    return [
        {
            "pattern_id": m.get("pattern_id"),
            "category": m.get("category"),
            "line_number": m.get("line_number"),
            "evidence": m.get("evidence", ""),
        }
        for m in matches
    ]


def task_incident(ledger: Ledger, dag_id: str, task_id: str, run_id: str | None) -> int | None:
    """The id of the incident of this task's newest diagnosis (in this run, else in any run)."""
    fingerprint = ledger.task_fingerprint(dag_id, task_id, run_id)
    if fingerprint is None and run_id is not None:
        fingerprint = ledger.task_fingerprint(dag_id, task_id, None)
    found = ledger.get_incident(fingerprint) if fingerprint else None
    return found.id if found is not None else None


def patterns(ledger: Ledger, analyzer: FailureAnalyzer, top: int = 10) -> dict[str, Any]:
    """The pattern library's health: the incidents seen most often, and drafts for the groups of
    recent failures no pattern explains (the ``patterns suggest`` core)."""
    from qubinode_recovery_provider.diagnosis.suggest import suggest_patterns

    texts = ledger.unexplained_texts(UNEXPLAINED_SAMPLE)
    return redacted(
        {
            "patterns": len(analyzer.library),
            "top": [i.model_dump(mode="json") for i in ledger.top_incidents(top)],
            "unexplained": len(texts),
            "suggestions": suggest_patterns(analyzer, texts, min_size=2),
        }
    )


def pending_approval(fingerprint: str) -> dict[str, Any] | None:
    """The recovery run's approval task waiting for a person on this fingerprint, with its UI link."""
    try:
        return _pending_approval(fingerprint)
    except Exception as exc:  # an unreadable metadata DB must not break the page
        log.warning("qubinode recovery UI: cannot read pending approvals: %s", exc)
        return None


def _pending_approval(fingerprint: str) -> dict[str, Any] | None:
    import sqlalchemy as sa
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    from qubinode_recovery_provider.notifications.recovery import RECOVERY_DAG_ID

    query = (
        sa.select(TaskInstance.run_id, DagRun.conf)
        .join(DagRun, sa.and_(DagRun.dag_id == TaskInstance.dag_id, DagRun.run_id == TaskInstance.run_id))
        .where(
            TaskInstance.dag_id == RECOVERY_DAG_ID,
            TaskInstance.task_id == APPROVAL_TASK_ID,
            TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
        )
    )
    with create_session() as session:
        for run_id, conf in session.execute(query):
            if (conf or {}).get("fingerprint") == fingerprint:
                path = f"/dags/{RECOVERY_DAG_ID}/runs/{quote(run_id, safe='')}/tasks/{APPROVAL_TASK_ID}"
                return {"dag_id": RECOVERY_DAG_ID, "run_id": run_id, "url": f"{path}/required_actions"}
    return None
