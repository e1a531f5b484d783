"""``DiagnoseFailureOperator``: check what is to be recovered, then diagnose it (the recovery DAG's first
task)."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from qubinode_recovery_provider.models import Diagnosis, FailureEvent
    from qubinode_recovery_provider.store.ledger import RecordedDiagnosis

log = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 20000
MAX_MESSAGE_LINES = 500
_FINGERPRINT_RE = re.compile(r"^[A-Za-z0-9:_.-]{1,128}$")


class FailureInputError(ValueError):
    """The input does not name a failure that can be recovered."""


class DiagnoseFailureOperator(BaseOperator):
    """Validate the failed DAG/task/run, diagnose the failure and record it in the ledger.

    Started by the :class:`~qubinode_recovery_provider.notifications.RecoveryNotifier`, the run's conf
    carries the incident's ``fingerprint``: the notifier recorded the failure already, so its diagnosis
    (made from the attempt's whole log) is read back from the ledger and no occurrence is added. Started
    from the trigger form, the message is diagnosed here and recorded, unless the ledger holds this
    very failure (same fingerprint, DAG, task and run) already.

    The task fails at once (no retries) with a one-line reason when the input cannot be recovered: an
    empty or malformed DAG id, a DAG Airflow does not know, a run the DAG does not have, or an empty
    failure message.

    Returns (XCom) ``{"failure", "diagnosis", "incident", "task", "source"}``: the checked input, the
    :class:`~qubinode_recovery_provider.models.Diagnosis`, the incident, the failed task's configuration
    (:class:`~qubinode_recovery_provider.models.TaskConfig`) and where the diagnosis came from.

    :param failed_dag_id: the DAG of the failed task (templated)
    :param failed_task_id: the failed task (templated); optional
    :param failed_run_id: the failed run (templated); optional, but without it nothing can be resumed
    :param failure_message: the error message or the end of the task's log (templated)
    :param fingerprint: the incident's fingerprint, when the notifier started the run (templated)
    :param failed_try_number: the try that failed, when known (templated)
    :param check_exists: check the DAG and the run through the Task SDK
    """

    template_fields: Sequence[str] = (
        "failed_dag_id",
        "failed_task_id",
        "failed_run_id",
        "failure_message",
        "fingerprint",
        "failed_try_number",
    )
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        failed_dag_id: str,
        failed_task_id: str | None = None,
        failed_run_id: str | None = None,
        failure_message: str = "",
        fingerprint: str | None = None,
        failed_try_number: int | str | None = None,
        check_exists: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.failed_dag_id = failed_dag_id
        self.failed_task_id = failed_task_id
        self.failed_run_id = failed_run_id
        self.failure_message = failure_message
        self.fingerprint = fingerprint
        self.failed_try_number = failed_try_number
        self.check_exists = check_exists

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.sdk.exceptions import AirflowFailException

        try:
            failure = self.checked_input()
            tags = self._check_exists(context, failure) if self.check_exists else []
        except FailureInputError as exc:
            raise AirflowFailException(f"Invalid recovery input: {exc}") from None
        diagnosis, incident, source, host = self._diagnose(failure)
        diagnosis = _second_opinion(diagnosis, failure)
        self.log.info(
            "Diagnosis of %s.%s: %s (confidence %.2f, retryable %s, fingerprint %s) from %s",
            failure["dag_id"],
            failure["task_id"] or "?",
            diagnosis.root_cause.value,
            diagnosis.confidence,
            diagnosis.retryable,
            diagnosis.fingerprint,
            source,
        )
        return {
            "failure": failure,
            "diagnosis": diagnosis.to_json_dict(),
            "incident": incident,
            "task": _task_config(failure, tags, diagnosis, host),
            "source": source,
        }

    # --- input -----------------------------------------------------------------------------------

    def checked_input(self) -> dict[str, Any]:
        """The rendered input, checked and redacted.

        :raises FailureInputError: with the reason, when it cannot be recovered
        """
        from qubinode_recovery_provider.operators.common import text_or_none
        from qubinode_recovery_provider.recovery.safety import is_airflow_key, is_airflow_run_id
        from qubinode_recovery_provider.utils.task_failure import mask_text

        dag_id = text_or_none(self.failed_dag_id)
        task_id = text_or_none(self.failed_task_id)
        run_id = text_or_none(self.failed_run_id)
        fingerprint = text_or_none(self.fingerprint)
        if not dag_id:
            raise FailureInputError("failed_dag_id is empty: name the DAG whose task failed")
        if not is_airflow_key(dag_id):
            raise FailureInputError(f"failed_dag_id {dag_id!r} is not a valid DAG id")
        if task_id and not is_airflow_key(task_id):
            raise FailureInputError(f"failed_task_id {task_id!r} is not a valid task id")
        if run_id and not is_airflow_run_id(run_id):
            raise FailureInputError(f"failed_run_id {run_id!r} is not a valid run id")
        if fingerprint and not _FINGERPRINT_RE.match(fingerprint):
            raise FailureInputError(f"fingerprint {fingerprint!r} is not a fingerprint")
        message = str(self.failure_message or "").strip()
        if not message or message == "None":
            raise FailureInputError(
                "failure_message is empty: paste the error message or the end of the failed task's log"
            )
        lines = mask_text(message[-MAX_MESSAGE_CHARS:]).splitlines()[-MAX_MESSAGE_LINES:]
        return {
            "dag_id": dag_id,
            "task_id": task_id,
            "run_id": run_id,
            "try_number": _try_number(self.failed_try_number),
            "fingerprint": fingerprint,
            "message": "\n".join(lines),
        }

    def _check_exists(self, context: Context, failure: dict[str, Any]) -> list[str]:
        """Ask Airflow whether the DAG (and the run) exist; return the DAG's tags."""
        ti = context["ti"]
        try:
            dag = ti.get_dag(failure["dag_id"])
        except Exception as exc:
            if _status(exc) == 404:
                raise FailureInputError(
                    f"unknown DAG {failure['dag_id']!r}: Airflow has no DAG with this id"
                ) from None
            raise
        if failure["run_id"]:
            try:
                ti.get_dagrun_state(failure["dag_id"], failure["run_id"])
            except Exception as exc:
                if _status(exc) == 404:
                    raise FailureInputError(
                        f"DAG {failure['dag_id']!r} has no run {failure['run_id']!r}"
                    ) from None
                raise
        return [str(tag) for tag in (getattr(dag, "tags", None) or [])]

    # --- diagnosis -------------------------------------------------------------------------------

    def _diagnose(self, failure: dict[str, Any]) -> tuple[Diagnosis, dict[str, Any] | None, str, str | None]:
        """The diagnosis, the incident, where the diagnosis came from, and the failed task's host.

        A failure has one diagnosis: the notifier's, read back by its fingerprint (after replaying the
        spool, where the notifier's write may wait), or else this message's own, recorded under the
        message's own fingerprint -- never a second diagnosis stamped with the notifier's identity.
        """
        from qubinode_recovery_provider import runtime

        ledger = runtime.current().ledger
        notified = failure["fingerprint"]
        if notified:
            found = _recorded(ledger, notified, failure) or _recorded(ledger, notified, failure, flush=True)
            if found is not None:
                source = "ledger (recorded by the notifier)"
                return found.diagnosis, _incident(ledger, notified), source, found.host
            self.log.warning(
                "The notifier's record of %s is not in the ledger; diagnosing the failure message instead",
                notified,
            )
        return _diagnose_message(ledger, failure)


def _second_opinion(diagnosis: Diagnosis, failure: dict[str, Any]) -> Diagnosis:
    """The configured LLM second opinion on a diagnosis the notifier deferred or left unsure, asked from
    the failure message (``docs/llm.md``); the diagnosis as it was when none is configured or wanted."""
    from qubinode_recovery_provider import runtime

    current = runtime.current()
    opinion = current.second_opinion
    if opinion is None or not opinion.wanted(diagnosis):
        return diagnosis
    event = _event(failure)
    reviewed = opinion.review(diagnosis, failure["message"], event=event)
    try:  # the ledger shows it too (a later row of the incident; no occurrence counted)
        current.ledger.record_diagnosis(event, reviewed)
    except Exception as exc:
        log.warning("the second opinion of %s was not recorded: %s", diagnosis.fingerprint, exc)
    return reviewed


def _diagnose_message(
    ledger: Any, failure: dict[str, Any]
) -> tuple[Diagnosis, dict[str, Any] | None, str, str | None]:
    """Diagnose the form's message and record it once (unless this failure is recorded already)."""
    from qubinode_recovery_provider import runtime
    from qubinode_recovery_provider.store.ledger import DUPLICATE

    event = _event(failure)
    diagnosis = runtime.current().analyzer.analyze(event)
    found = _recorded(ledger, diagnosis.fingerprint, failure, same_run_only=True)
    if found is not None:
        return (
            diagnosis,
            _incident(ledger, diagnosis.fingerprint),
            "failure_message (already recorded)",
            found.host,
        )
    written = ledger.record_occurrence(event, diagnosis)
    incident = written.incident.model_dump(mode="json")
    if written.status == DUPLICATE:  # this attempt was recorded before, by another form run
        incident = _incident(ledger, diagnosis.fingerprint) or incident
        return diagnosis, incident, "failure_message (already recorded)", None
    return diagnosis, incident, "failure_message (recorded now)", None


def _event(failure: dict[str, Any]) -> FailureEvent:
    from qubinode_recovery_provider.models import FailureEvent

    return FailureEvent(
        dag_id=failure["dag_id"],
        task_id=failure["task_id"],
        run_id=failure["run_id"],
        try_number=failure["try_number"],
        log_tail=failure["message"].splitlines(),
    )


def _recorded(
    ledger: Any,
    fingerprint: str,
    failure: dict[str, Any],
    *,
    same_run_only: bool = False,
    flush: bool = False,
) -> RecordedDiagnosis | None:
    """The diagnosis the ledger holds for this failure (of the same run and task first, else the
    incident's newest unless ``same_run_only``); ``flush`` replays the spool first. ``None`` when the
    ledger cannot be read."""
    try:
        if flush:
            ledger.flush_spool()
        return ledger.recorded_diagnosis(
            fingerprint,
            dag_id=failure["dag_id"],
            run_id=failure["run_id"],
            task_id=failure["task_id"],
            same_run_only=same_run_only,
        )
    except Exception:
        return None


def _incident(ledger: Any, fingerprint: str) -> dict[str, Any] | None:
    try:
        incident = ledger.get_incident(fingerprint)
    except Exception:
        return None
    return incident.model_dump(mode="json") if incident is not None else None


def _task_config(
    failure: dict[str, Any], tags: list[str], diagnosis: Diagnosis, host: str | None
) -> dict[str, Any]:
    return {
        "dag_id": failure["dag_id"],
        "task_id": failure["task_id"] or diagnosis.task_id,
        "run_id": failure["run_id"] or diagnosis.run_id,
        "try_number": failure["try_number"],
        "host": host,
        "tags": tags,
    }


def _status(exc: BaseException) -> int | None:
    """The HTTP status behind an error of the Task SDK (``AirflowRuntimeError``: ``error.detail``
    holds ``status_code``) or of an HTTP client (``response.status_code``)."""
    detail = getattr(getattr(exc, "error", None), "detail", None)
    code = detail.get("status_code") if isinstance(detail, dict) else None
    if code is None:
        code = getattr(getattr(exc, "response", None), "status_code", None)
    return int(code) if isinstance(code, int) and not isinstance(code, bool) else None


def _try_number(value: Any) -> int | None:
    """The failed try from the run's conf: ``None`` when not given, else an integer in
    1..:data:`MAX_TRY_NUMBER`.

    :raises FailureInputError: for anything else.
    """
    from qubinode_recovery_provider.models import MAX_TRY_NUMBER

    text = "" if value is None else str(value).strip()
    if not text or text == "None":
        return None
    if len(text) > 6 or not text.isdigit() or not 1 <= int(text) <= MAX_TRY_NUMBER:
        limit = f"1 to {MAX_TRY_NUMBER}"
        raise FailureInputError(f"failed_try_number {text[:40]!r} is not a try number ({limit})")
    return int(text)


__all__ = ["DiagnoseFailureOperator", "FailureInputError"]
