"""Hand an incident to a person once per fingerprint and failed run, through the ledger's escalation
outbox. Plain Python: no Airflow import.

:func:`queue_escalation` is the one place an escalation is queued. The recovery executor calls it (an
option only a person can carry out, an open circuit breaker) and so does the escalation sink
(:func:`~qubinode_recovery_provider.escalation.reports.escalate`, the recovery DAG's ``escalate`` step):

1. it claims the escalation in the ledger under the idempotency key
   ``<fingerprint>|<run_id or ->|escalate`` (:func:`escalation_key`): of any number of callers for the
   same fingerprint and run, only the first queues it. When the ledger cannot be reached the claim
   counts as won: better a duplicate escalation than none;
2. the first claimant puts the title, the Markdown body (:func:`escalation_text`) and the labels in the
   escalation outbox, moves the incident to ``escalated`` and finishes the claim with what it did.

No ledger failure is raised: it is logged, and the outbox entry is spooled by the ledger when it can be.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.models import AttemptOutcome, IncidentState, RecoveryAttempt, utcnow
from qubinode_recovery_provider.output_limits import OutputLimits, ledger_hint
from qubinode_recovery_provider.recovery.policy import ESCALATE_ACTION
from qubinode_recovery_provider.recovery.render import plan_to_markdown
from qubinode_recovery_provider.recovery.safety import is_airflow_key

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import RecoveryPlan

log = logging.getLogger(__name__)

#: Labels of every escalation of a recovery plan; ``root-cause:<category>`` is added per plan.
ESCALATION_LABELS = ("qubinode-recovery",)
MAX_DETAIL_CHARS = 2000


@dataclass(frozen=True)
class QueuedEscalation:
    """What :func:`queue_escalation` did.

    :param first: this call queued the escalation (False: it was queued before for this run)
    :param outbox_id: the outbox entry this call made (0: spooled, the ledger was unavailable); None
        when the escalation was queued before
    :param attempt: the escalation's record in the ledger (action ``escalate``, outcome ``blocked``),
        with a one-line detail
    """

    first: bool
    outbox_id: int | None
    attempt: RecoveryAttempt


def escalation_key(plan: RecoveryPlan) -> str:
    """The idempotency key of the escalation of ``plan``: ``<fingerprint>|<run_id or ->|escalate``."""
    return f"{plan.fingerprint}|{plan.run_id or '-'}|{ESCALATE_ACTION}"


def escalation_text(plan: RecoveryPlan, reason: str) -> tuple[str, str]:
    """Title and Markdown body of the escalation of ``plan``.

    :param plan: the recovery plan (its options are the person's starting point)
    :param reason: why it is escalated, one line
    """
    where = ".".join(part for part in (plan.dag_id, plan.task_id) if part and is_airflow_key(part))
    title = f"[qubinode-recovery] {plan.root_cause.value} failure" + (f" in {where}" if where else "")
    body = f"**Escalated:** {reason}\n\n" + plan_to_markdown(
        plan, level=2, limits=OutputLimits.configured(), more_hint=ledger_hint(plan.fingerprint)
    )
    return title, body


def escalation_labels(plan: RecoveryPlan, severity: str | None = None) -> list[str]:
    """The outbox labels of the escalation of ``plan``: ``qubinode-recovery``, ``root-cause:<category>``
    and, when known, ``severity:<level>``."""
    labels = [*ESCALATION_LABELS, f"root-cause:{plan.root_cause.value}"]
    return [*labels, f"severity:{severity}"] if severity else labels


def queue_escalation(
    ledger: Any,
    plan: RecoveryPlan,
    reason: str,
    *,
    host: str | None = None,
    body: str | None = None,
    severity: str | None = None,
) -> QueuedEscalation:
    """Queue the escalation of ``plan`` once per fingerprint and run (see the module docstring).

    :param ledger: the ledger
    :param plan: the recovery plan of the failure
    :param reason: why it is escalated, one line
    :param host: the host the failure happened on, kept with the escalation's record
    :param body: the Markdown body; default :func:`escalation_text`'s (the reason and the plan)
    :param severity: the diagnosis's severity, for the labels
    """
    key = escalation_key(plan)
    claim = RecoveryAttempt(
        incident_fingerprint=plan.fingerprint,
        idempotency_key=key,
        action=ESCALATE_ACTION,
        host=host,
        outcome=AttemptOutcome.BLOCKED,
        detail=f"escalated: {reason}"[:MAX_DETAIL_CHARS],
    )
    if not _claim(ledger, claim):
        detail = f"already escalated for this run: {reason}"
        return QueuedEscalation(False, None, _finished(claim, detail))
    title, plain = escalation_text(plan, reason)
    labels = escalation_labels(plan, severity)
    outbox_id = write_safely(ledger.enqueue_escalation, plan.fingerprint, title, body or plain, labels)
    write_safely(ledger.set_incident_state, plan.fingerprint, IncidentState.ESCALATED)
    detail = f"escalated (outbox {outbox_id or 'spooled'}): {reason}"
    write_safely(ledger.finish_attempt, key, AttemptOutcome.BLOCKED, detail[:MAX_DETAIL_CHARS])
    return QueuedEscalation(True, outbox_id, _finished(claim, detail))


def queue_resolution(ledger: Any, fingerprint: str, note: str) -> int | None:
    """Queue "the recovery fixed it" for the fingerprint's escalation issue, when it has one (or an
    escalation still waits in the outbox); the outbox id, or None when there is nothing to close.

    :param ledger: the ledger
    :param fingerprint: the incident's fingerprint
    :param note: what fixed it, Markdown
    """
    try:
        record = ledger.escalation_issue(fingerprint)
        waiting = any(e["fingerprint"] == fingerprint for e in ledger.pending_escalations(limit=500))
    except Exception as exc:
        log.warning("ledger unavailable; the escalation issue stays open: %s", _one_line(exc))
        return None
    if not waiting and not (record and record["number"] and record["state"] != "closed"):
        return None
    title = f"[qubinode-recovery] resolved: {fingerprint[:24]}"
    result: int | None = write_safely(ledger.enqueue_escalation, fingerprint, title, note, [], "resolve")
    return result


def write_safely(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)``, or None (logged) when the ledger write fails."""
    try:
        return fn(*args)
    except Exception as exc:
        log.warning("ledger write %s failed: %s", getattr(fn, "__name__", fn), _one_line(exc))
        return None


def _claim(ledger: Any, claim: RecoveryAttempt) -> bool:
    try:
        return bool(ledger.begin_attempt(claim))
    except Exception as exc:  # unavailable: escalate without de-duplication rather than stay silent
        log.warning("ledger unavailable; escalating without de-duplication: %s", _one_line(exc))
        return True


def _finished(claim: RecoveryAttempt, detail: str) -> RecoveryAttempt:
    return claim.model_copy(update={"detail": detail, "finished_at": utcnow()})


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


__all__ = [
    "ESCALATION_LABELS",
    "QueuedEscalation",
    "escalation_key",
    "escalation_labels",
    "escalation_text",
    "queue_escalation",
    "queue_resolution",
    "write_safely",
]
