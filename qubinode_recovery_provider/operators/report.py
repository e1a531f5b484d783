"""``RecoveryReportOperator``: the last step of a recovery run: outcome in the ledger, Markdown summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

RECOVERED = "recovered"
ESCALATED = "escalated"
DRY_RUN = "dry_run"
ALREADY_HANDLED = "already_handled"
OPEN = "open"
INPUT_REJECTED = "input_rejected"


class RecoveryReportOperator(BaseOperator):
    """Summarise the recovery run (meant for ``trigger_rule="all_done"``): write the outcome to the
    ledger (a recovered incident becomes ``resolved``), write ``<state_dir>/reports/recovery-<run>.md``
    and log it.

    Outcomes: ``recovered`` (the verification saw the failed run succeed), ``escalated``, ``dry_run``,
    ``already_handled`` (another recovery run carried out the same attempt), ``open`` (nothing ran,
    nothing escalated). The task fails when the run never got a diagnosis (its input was rejected), so
    such a run ends failed.

    Last, it sends the recovery-run requests the notifier recorded but could not send in its time
    budget (:func:`~qubinode_recovery_provider.notifications.deliver_pending_triggers`), so a failure
    whose request is still pending gets its recovery run when the next one finishes.

    Where operators look, through the Airflow REST API (``conn_id``): the outcome becomes this run's note
    (Markdown: the headline, the failed task, the diagnosis, the decision, where the full report is),
    and the failed task instance gets a note with the one-line diagnosis, the incident and this run.
    A note that cannot be set is a warning in the log, never a failure of the report.

    Returns (XCom) ``{"outcome", "headline", "report_path", "fingerprint", "task_states",
    "delivered_requests", "notes", "issue_url"}``; ``issue_url`` is the incident's GitHub issue, and
    a recovered incident's open issue is closed with a note.

    :param task_ids: the recovery run's steps, in order: diagnose, plan, decide, approve, execute,
        verify, escalate (a mapping from those names to task ids; missing names are left out)
    :param deliver_pending: send the notifier's pending recovery-run requests
    :param set_notes: set the notes above
    :param conn_id: the REST API connection; default ``[qubinode_recovery] recovery_conn_id``
    """

    template_fields: Sequence[str] = ("conn_id",)
    ui_color = "#eeeeee"

    DEFAULT_STEPS = {
        "diagnose": "diagnose",
        "plan": "plan",
        "decide": "decide",
        "approve": "approve",
        "execute": "execute",
        "verify": "verify",
        "escalate": "escalate",
    }

    def __init__(
        self,
        *,
        task_ids: dict[str, str] | None = None,
        deliver_pending: bool = True,
        set_notes: bool = True,
        conn_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.task_ids = {**self.DEFAULT_STEPS, **(task_ids or {})}
        self.deliver_pending = deliver_pending
        self.set_notes = set_notes
        self.conn_id = conn_id

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        from qubinode_recovery_provider import runtime
        from qubinode_recovery_provider.escalation.reports import reports_dir, safe_name
        from qubinode_recovery_provider.files import write_private
        from qubinode_recovery_provider.models import IncidentState
        from qubinode_recovery_provider.operators import common as c

        steps = self.task_ids
        states = c.run_task_states(context, list(steps.values()))
        facts = {name: c.pull(context, task_id) for name, task_id in steps.items()}
        facts["decision"] = c.pull(context, steps["decide"], c.DECISION_KEY)
        facts["attempt"] = c.pull(context, steps["execute"], c.ATTEMPT_KEY)
        facts["verification"] = c.pull(context, steps["verify"], c.VERIFICATION_KEY) or facts["verify"]
        facts["approve"] = c.approval(context, steps["approve"])
        outcome, headline = _outcome(states, facts, steps)
        ti = context["ti"]
        fingerprint = ((facts["diagnose"] or {}).get("diagnosis") or {}).get("fingerprint")
        ledger = runtime.current().ledger
        if outcome == RECOVERED and fingerprint:
            ledger.set_incident_state(fingerprint, IncidentState.RESOLVED)
        issue_url = self._github(ledger, outcome, fingerprint, ti, headline)
        markdown = _markdown(ti, outcome, headline, states, facts, steps)
        if issue_url:
            markdown += f"\nGitHub issue: {issue_url}\n"
        path = write_private(reports_dir() / f"recovery-{safe_name(ti.run_id)}.md", markdown)
        self.log.info("Recovery report (%s): %s\n%s", outcome, path, markdown)
        notes = self._set_notes(ti, outcome, headline, facts, path) if self.set_notes else {}
        delivered = self._deliver_pending()
        if outcome == INPUT_REJECTED:
            raise AirflowFailException(f"{headline} (report: {path})")
        return {
            "outcome": outcome,
            "headline": headline,
            "report_path": str(path),
            "fingerprint": fingerprint,
            "task_states": states,
            "delivered_requests": delivered,
            "notes": notes,
            "issue_url": issue_url,
        }

    def _github(
        self, ledger: Any, outcome: str, fingerprint: str | None, ti: Any, headline: str
    ) -> str | None:
        """Close the incident's GitHub issue when the run recovered it; the issue's URL, if it has one."""
        from qubinode_recovery_provider.escalation.outbox import queue_resolution
        from qubinode_recovery_provider.hooks.github import deliver_pending

        if not fingerprint:
            return None
        if outcome == RECOVERED and queue_resolution(
            ledger, fingerprint, f"{headline}\n\nRecovery run: `{ti.dag_id}` / `{ti.run_id}`"
        ):
            delivery = deliver_pending(ledger, fingerprint)
            if delivery is not None:
                self.log.info("GitHub: %s", delivery.to_dict())
        try:
            record = ledger.escalation_issue(fingerprint)
        except Exception:
            return None
        return record["url"] if record else None

    def _set_notes(
        self, ti: Any, outcome: str, headline: str, facts: dict[str, Any], path: Any
    ) -> dict[str, str]:
        """Put the outcome on this run and on the failed task instance; ``{"run"|"task": "set" or why
        not}``. Never fails the report."""
        from qubinode_recovery_provider.airflow_api import AirflowAPIError
        from qubinode_recovery_provider.hooks.airflow_api import AirflowApiHook

        done: dict[str, str] = {}
        failure = (facts.get("diagnose") or {}).get("failure") or {}
        try:
            client = AirflowApiHook(self.conn_id).get_client(timeout=NOTE_TIMEOUT_SECONDS)
        except Exception as exc:
            self.log.warning("Notes not set (no REST API connection): %s", _one_line(exc))
            return {"run": f"not set: {_one_line(exc)}"}
        with client:
            targets = [
                (
                    "run",
                    lambda: client.set_dag_run_note(
                        ti.dag_id, ti.run_id, run_note(outcome, headline, facts, path)
                    ),
                )
            ]
            if failure.get("dag_id") and failure.get("run_id") and failure.get("task_id"):
                text = task_note(outcome, facts, ti.run_id)
                targets.append(
                    (
                        "task",
                        lambda: client.set_task_instance_note(
                            failure["dag_id"],
                            failure["run_id"],
                            failure["task_id"],
                            text,
                            int(failure.get("map_index", -1) or -1),
                        ),
                    )
                )
            for name, call in targets:
                try:
                    call()
                    done[name] = "set"
                except (AirflowAPIError, OSError, ValueError) as exc:
                    self.log.warning("The %s note was not set: %s", name, _one_line(exc))
                    done[name] = f"not set: {_one_line(exc)}"
        return done

    def _deliver_pending(self) -> list[str]:
        """Send the notifier's pending recovery-run requests; never fails the report."""
        if not self.deliver_pending:
            return []
        try:
            from qubinode_recovery_provider.notifications import deliver_pending_triggers

            tried = deliver_pending_triggers(limit=5, timeout=5.0)
        except Exception as exc:
            self.log.warning("Could not deliver pending recovery requests: %s", exc)
            return []
        for record in tried:
            self.log.info("Pending recovery request %s: %s", record.run_id, record.status)
        return [record.run_id for record in tried if record.status == "sent"]


#: Seconds per REST API call that sets a note.
NOTE_TIMEOUT_SECONDS = 10.0

#: How each outcome reads at the top of a note.
OUTCOME_TITLES = {
    RECOVERED: "Recovered",
    ESCALATED: "Escalated to a person",
    DRY_RUN: "Dry run: nothing ran",
    ALREADY_HANDLED: "Already handled: nothing ran",
    OPEN: "Nothing to do",
    INPUT_REJECTED: "Input rejected",
}


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _safe(text: str) -> str:
    """A note leaves the process (Airflow's database, the UI): redacted, no control sequences."""
    from qubinode_recovery_provider.redaction import redact, strip_control

    return redact(strip_control(text))


def run_note(outcome: str, headline: str, facts: dict[str, Any], path: Any) -> str:
    """The recovery run's note: what happened, for the run's page (Markdown, cut to the API's limit)."""
    diagnose = facts.get("diagnose") or {}
    failure = diagnose.get("failure") or {}
    lines = [f"**{OUTCOME_TITLES.get(outcome, outcome)}** - {headline}", ""]
    if failure:
        where = ".".join(p for p in (failure.get("dag_id"), failure.get("task_id")) if p)
        lines.append(f"- Failed: `{where}` in run `{failure.get('run_id') or '?'}`")
    diagnosis = diagnose.get("diagnosis") or {}
    if diagnosis:
        lines.append(
            f"- Diagnosis: {diagnosis.get('root_cause')} ({float(diagnosis.get('confidence') or 0):.2f}), "
            f"incident `{diagnosis.get('fingerprint')}`"
        )
        lines += _opinion_lines(diagnosis)
    lines += _decision_lines(facts)
    lines.append(f"- Full report: `{path}`")
    return _safe("\n".join(lines))


def _opinion_lines(diagnosis: dict[str, Any]) -> list[str]:
    """The LLM second opinion of a diagnosis (XCom JSON), labelled with its model; none when not asked."""
    from pydantic import ValidationError

    from qubinode_recovery_provider.models import LLMOpinion

    try:
        opinion = LLMOpinion.model_validate(diagnosis["llm"]) if diagnosis.get("llm") else None
    except ValidationError:
        return []
    return [f"- {opinion.describe()}"] if opinion is not None else []


def task_note(outcome: str, facts: dict[str, Any], recovery_run_id: str) -> str:
    """The failed task instance's note: the one-line diagnosis, the incident and the recovery run."""
    diagnose = facts.get("diagnose") or {}
    diagnosis = diagnose.get("diagnosis") or {}
    incident = diagnose.get("incident") or {}
    summary = " ".join(str(diagnosis.get("summary") or "").split())[:300]
    number = f"{incident.get('id')} " if incident.get("id") is not None else ""
    return _safe(
        f"qubinode: {diagnosis.get('root_cause')} ({float(diagnosis.get('confidence') or 0):.2f}) - "
        f"{summary}\n\nIncident {number}`{diagnosis.get('fingerprint')}`; recovery run "
        f"`{recovery_run_id}`: {OUTCOME_TITLES.get(outcome, outcome).lower()}."
    )


def _outcome(states: dict[str, Any], facts: dict[str, Any], steps: dict[str, str]) -> tuple[str, str]:
    from qubinode_recovery_provider.operators.common import FAILED_STATES

    attempt = facts.get("attempt") or {}
    if not facts.get("diagnose"):
        state = states.get(steps["diagnose"]) or "not run"
        return INPUT_REJECTED, f"no diagnosis: the diagnose task is {state} (see its log for the reason)"
    if states.get(steps["verify"]) == "success":
        return RECOVERED, "recovered: the failed run was resumed from the failed task and succeeded"
    if states.get(steps["escalate"]) == "success":
        escalation = facts.get("escalate") or {}
        return ESCALATED, "escalated: " + "; ".join(escalation.get("reasons") or ["see the escalate task"])
    if attempt.get("outcome") == "dry_run":
        return DRY_RUN, attempt.get("detail") or "dry run"
    if attempt.get("outcome") == "skipped":
        return ALREADY_HANDLED, attempt.get("detail") or "skipped"
    failed = [name for name, task_id in steps.items() if states.get(task_id) in FAILED_STATES]
    why = f"steps that did not finish: {', '.join(failed)}" if failed else "nothing ran"
    return OPEN, f"open: {why}"


def _markdown(
    ti: Any, outcome: str, headline: str, states: dict[str, Any], facts: dict[str, Any], steps: dict[str, str]
) -> str:
    diagnose = facts.get("diagnose") or {}
    failure = diagnose.get("failure") or {}
    diagnosis = diagnose.get("diagnosis") or {}
    lines = [
        f"# Recovery run `{ti.run_id}`: {outcome.replace('_', ' ')}",
        "",
        f"**{headline}**",
        "",
    ]
    if failure:
        where = ".".join(p for p in (failure.get("dag_id"), failure.get("task_id")) if p)
        lines.append(f"- Failed: `{where}` in run `{failure.get('run_id') or '?'}`")
    if diagnosis:
        confidence = float(diagnosis.get("confidence") or 0)
        lines.append(
            f"- Diagnosis: {diagnosis.get('root_cause')} (confidence {confidence:.2f}, "
            f"retryable {diagnosis.get('retryable')}), fingerprint `{diagnosis.get('fingerprint')}`"
            f" ({diagnose.get('source', '')})"
        )
        lines += _opinion_lines(diagnosis)
    lines += _decision_lines(facts)
    lines += ["", "| step | task | state |", "|---|---|---|"]
    lines += [
        f"| {name} | `{task_id}` | {states.get(task_id) or 'not run'} |" for name, task_id in steps.items()
    ]
    plan = facts.get("plan") or {}
    if plan.get("markdown"):
        lines += ["", plan["markdown"]]
    return "\n".join(lines).rstrip() + "\n"


def _decision_lines(facts: dict[str, Any]) -> list[str]:
    lines = []
    decision = facts.get("decision") or {}
    if decision:
        reasons = "; ".join(decision.get("reasons") or [])
        lines.append(f"- Decision: {decision.get('route')}" + (f" ({reasons})" if reasons else ""))
    approval = facts.get("approve")
    if isinstance(approval, dict) and approval.get("chosen_options"):
        by = approval.get("responded_by")
        how = " (nobody answered in time: the default applied)" if approval.get("timed_out") else ""
        lines.append(f"- Approval: {', '.join(approval['chosen_options'])}{f' by {by}' if by else ''}{how}")
    attempt = facts.get("attempt") or {}
    if attempt:
        lines.append(
            f"- Attempt: `{attempt.get('action')}` {attempt.get('outcome')}: {attempt.get('detail')}"
        )
    verification = facts.get("verification") or {}
    if isinstance(verification, dict) and verification:
        lines.append(f"- Verification: {verification.get('reason') or verification.get('run_state')}")
    escalation = facts.get("escalate") or {}
    if isinstance(escalation, dict) and escalation.get("report_path"):
        lines.append(f"- Escalation: {escalation.get('detail')}")
    return lines


__all__ = ["RecoveryReportOperator"]
