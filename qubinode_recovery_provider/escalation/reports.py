"""The default escalation sink: the ledger's escalation outbox plus a Markdown report on disk.

:func:`escalate` hands an incident to a person once per fingerprint and failed run:

1. it queues the escalation through :func:`~qubinode_recovery_provider.escalation.outbox.queue_escalation`,
   under the same idempotency key the recovery executor uses when it escalates
   (``<fingerprint>|<run_id>|escalate``), so the executor and the recovery DAG never queue the same
   escalation twice: the first claimant puts the title and Markdown body in the ledger's escalation
   outbox and moves the incident to ``escalated``;
2. every caller writes (or rewrites) the report ``<state_dir>/reports/escalation-<fingerprint>-<run>.md``;
3. without a GitHub repository configured (``[qubinode_recovery] github_repository``), the outbox entry
   is marked sent with the report's path as its reference. With one, it stays pending for the GitHub
   sink (:mod:`~qubinode_recovery_provider.escalation.delivery`).

Plain Python: no Airflow import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from qubinode_recovery_provider import config
from qubinode_recovery_provider.escalation.outbox import escalation_text, queue_escalation, write_safely
from qubinode_recovery_provider.files import private_dir, write_private
from qubinode_recovery_provider.models import utcnow

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import Diagnosis, RecoveryAttempt, RecoveryPlan

REPORTS_DIRECTORY = "reports"
MAX_ATTEMPT_ROWS = 20
MAX_CONTEXT_LINES = 20
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class EscalationResult:
    """What :func:`escalate` did.

    :param first: this call queued the escalation (False: it was queued before, by this or another run)
    :param outbox_id: the outbox entry, when known (0: spooled, the ledger was unavailable)
    :param report_path: the Markdown report written
    :param reference: where a person finds it (the report path, or "pending GitHub issue")
    :param detail: one line for the task log
    """

    first: bool
    outbox_id: int | None
    report_path: str
    reference: str
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "first": self.first,
            "outbox_id": self.outbox_id,
            "report_path": self.report_path,
            "reference": self.reference,
            "detail": self.detail,
        }


def reports_dir() -> Path:
    """``<state_dir>/reports``, where escalation and recovery reports are written: created, or
    tightened when it exists with wider rights, as ``0700``."""
    return private_dir(config.state_dir() / REPORTS_DIRECTORY)


def safe_name(*parts: str | None, limit: int = 120) -> str:
    """A file name made of ``parts`` (unsafe characters become ``_``)."""
    text = "-".join(_UNSAFE.sub("_", part) for part in parts if part)
    return text[:limit].strip("_-") or "unknown"


def escalate(
    ledger: Any,
    plan: RecoveryPlan,
    reasons: list[str],
    *,
    diagnosis: Diagnosis | None = None,
    details: str = "",
    directory: Path | None = None,
    github: bool | None = None,
) -> EscalationResult:
    """Hand the incident of ``plan`` to a person (see the module docstring); never raises because the
    ledger is unavailable.

    :param ledger: the ledger
    :param plan: the recovery plan of the failure (its options are the person's starting point)
    :param reasons: why no automatic recovery fixed it, one line each
    :param diagnosis: adds the verdict to the report
    :param details: extra Markdown for the report (what the recovery run did)
    :param directory: where the report goes; default :func:`reports_dir`
    :param github: a GitHub sink will deliver the outbox entry (default: ``github_repository`` is set);
        False marks it sent with the report as its reference
    """
    reason = "; ".join(r.strip() for r in reasons if r and r.strip()) or "escalated by request"
    title, body = escalation_text(plan, reason)
    path = (directory or reports_dir()) / f"escalation-{safe_name(plan.fingerprint[:24], plan.run_id)}.md"
    content = report_content(body, diagnosis, details, _attempts(ledger, plan.fingerprint))
    stamp = f"# {title}\n\n_Written {utcnow().isoformat(timespec='seconds')}_\n\n"
    write_private(path, stamp + content)
    severity = diagnosis.severity.value if diagnosis is not None else None
    queued = queue_escalation(ledger, plan, reason, body=content, severity=severity)
    first = queued.first
    outbox_id = queued.outbox_id if first else _pending_entry(ledger, plan.fingerprint)
    reference = _deliver(ledger, outbox_id, path, github)
    verb = "queued" if first else "already queued"
    detail = f"escalation {verb} (outbox {outbox_id if outbox_id else 'spooled or sent'}); report {path}"
    return EscalationResult(first, outbox_id, str(path), reference, detail)


def report_content(
    body: str, diagnosis: Diagnosis | None, details: str, attempts: list[RecoveryAttempt] | None = None
) -> str:
    """The escalation's Markdown (the report file and the GitHub issue): the diagnosis with its evidence
    and context, what the recovery run did, the attempts and their outcomes, then ``body`` (the reason
    and the ranked plan).

    :param body: the reason and the plan (:func:`~.outbox.escalation_text`)
    :param diagnosis: the verdict, when known
    :param details: Markdown about the recovery run (its links)
    :param attempts: the incident's recovery attempts
    """
    lines: list[str] = _diagnosis_lines(diagnosis) if diagnosis is not None else []
    if details.strip():
        lines += [details.rstrip(), ""]
    if attempts:
        lines += ["## Attempts", "", "| started | action | outcome | detail |", "|---|---|---|---|"]
        lines += [
            f"| {a.started_at.isoformat(timespec='seconds')} | `{a.action}` | {a.outcome.value} | "
            f"{_cell(a.detail)} |"
            for a in attempts[-MAX_ATTEMPT_ROWS:]
        ]
        lines.append("")
    lines.append(body.rstrip())
    return "\n".join(lines) + "\n"


def _diagnosis_lines(diagnosis: Diagnosis) -> list[str]:
    lines = [
        "## Diagnosis",
        "",
        f"- Root cause: {diagnosis.root_cause.value} (confidence {diagnosis.confidence:.2f}, "
        f"severity {diagnosis.severity.value}, retryable {diagnosis.retryable})",
    ]
    if diagnosis.summary:
        lines.append(f"- Summary: {' '.join(diagnosis.summary.split())}")
    lines += [f"- Evidence ({m.pattern_id}): `{_cell(m.evidence)}`" for m in diagnosis.matched_patterns[:3]]
    if diagnosis.llm is not None:
        lines.append("- " + " ".join(diagnosis.llm.describe().split())[:1000])
    context = [
        *(f"affected service: {s}" for s in diagnosis.affected_services),
        *diagnosis.corroboration,
        *(f"against: {c}" for c in diagnosis.contradictions),
    ]
    if context:
        lines += ["", "### Context", "", *(f"- {_cell(item)}" for item in context[:MAX_CONTEXT_LINES])]
    lines.append("")
    return lines


def airflow_links(
    dag_id: str | None,
    run_id: str | None,
    task_id: str | None,
    try_number: int | None = None,
    recovery: tuple[str, str] | None = None,
    base_url: str | None = None,
) -> list[str]:
    """Markdown list items linking the failed task instance, its log and the recovery run in the
    Airflow UI (``[qubinode_recovery] airflow_base_url``); empty without a base URL.

    :param recovery: the recovery run's ``(dag_id, run_id)``
    """
    base = (base_url if base_url is not None else config.get("airflow_base_url")).strip().rstrip("/")
    if not base:
        return []
    items: list[str] = []
    if dag_id and run_id and task_id:
        ti = f"{base}/dags/{_q(dag_id)}/runs/{_q(run_id)}/tasks/{_q(task_id)}"
        items.append(f"- Failed task instance: {ti}")
        items.append(f"- Its log: {ti}" + (f"?try_number={int(try_number)}" if try_number else ""))
    if recovery:
        items.append(f"- Recovery run: {base}/dags/{_q(recovery[0])}/runs/{_q(recovery[1])}")
    return items


def _q(part: str) -> str:
    return quote(part, safe="")


def _attempts(ledger: Any, fingerprint: str) -> list[RecoveryAttempt]:
    try:
        return list(ledger.attempts(fingerprint=fingerprint, automatic_only=False))
    except Exception:
        return []


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("`", "'")[:300]


def _pending_entry(ledger: Any, fingerprint: str) -> int | None:
    try:
        pending = ledger.pending_escalations(limit=200)
    except Exception:
        return None
    found = [entry["id"] for entry in pending if entry.get("fingerprint") == fingerprint]
    return found[-1] if found else None


def _deliver(ledger: Any, outbox_id: int | None, path: Path, github: bool | None) -> str:
    """Mark the outbox entry sent with the report as its reference, unless GitHub will send it."""
    if github if github is not None else config.get("github_repository").strip():
        return "pending GitHub issue (report: " + str(path) + ")"
    if outbox_id:
        write_safely(ledger.mark_escalated, outbox_id, str(path))
    return str(path)


__all__ = ["EscalationResult", "airflow_links", "escalate", "report_content", "reports_dir", "safe_name"]
