"""Retry claims from evidence: what the ledger recorded about earlier retries of the same failure.

Not part of the analyzer, which stays a pure function of the text: its callers that have the ledger at
hand (the retry policy) apply it to the analyzer's diagnosis.

The analyzer reads only the failure's text: it says ``retryable: true`` for causes transient by nature
and ``null`` when the text does not tell (docs/categories.md). Where the ledger is at hand (the retry
policy, before Airflow's own retry), earlier retries of the same fingerprint decide a ``null`` claim:
at least :data:`MIN_RECORDS` successes and no failure make it ``true``; at least :data:`MIN_RECORDS`
failures and no success make it ``false`` (a ``true`` claim too). Only the ledger's own rows count
(attempt outcomes the executor wrote, failures the callbacks recorded): nothing in a log's text is
evidence.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from qubinode_recovery_provider.diagnosis.plain import PlainDiagnosis, PlainFailureEvent
    from qubinode_recovery_provider.models import Diagnosis, FailureEvent
    from qubinode_recovery_provider.store.queries import SameRun

log = logging.getLogger(__name__)

#: Records needed before the ledger decides (one flaky run proves nothing either way).
MIN_RECORDS = 2
#: The recovery action that retries the failed task (``recovery.actions.RETRY_FROM_FAILURE``; named here
#: so that the retry policy's path does not import the recovery package).
RETRY_ACTION = "retry-from-failure"


@dataclass(frozen=True)
class RetryHistory:
    """How earlier plain retries of one failure ended.

    :param succeeded: retries after which the task did not fail again in that run
    :param failed: retries after which it failed again (the same way, for the task's own retries)
    """

    succeeded: int = 0
    failed: int = 0

    def describe(self) -> str:
        total = self.succeeded + self.failed
        return f"{self.succeeded} of {total} earlier retries of this failure succeeded (ledger)"


class RetryHistorySource(Protocol):
    """Anything that counts earlier retries of a fingerprint (the ledger does)."""

    def retry_outcomes(
        self, fingerprint: str, action: str, *, limit: int = ..., current: SameRun | None = ...
    ) -> tuple[int, int]: ...


def weigh(
    diagnosis: Diagnosis | PlainDiagnosis, history: RetryHistory, min_records: int = MIN_RECORDS
) -> Diagnosis | PlainDiagnosis:
    """The diagnosis with its retry claim decided by ``history`` where the history is conclusive
    (a copy; ``diagnosis`` is not changed).

    :param diagnosis: the analyzer's diagnosis
    :param history: earlier retries of its fingerprint
    :param min_records: records needed to decide
    """
    total = history.succeeded + history.failed
    if total == 0 or diagnosis.retryable is False:
        return diagnosis
    if history.failed == 0 and history.succeeded >= min_records:
        retryable: bool | None = True
    elif history.succeeded == 0 and history.failed >= min_records:
        retryable = False
    else:
        retryable = diagnosis.retryable
    update: dict[str, object] = {"retry_evidence": history.describe()}
    if retryable is not diagnosis.retryable:
        update["retryable"] = retryable
        update["retry_delay_seconds"] = diagnosis.retry_delay_seconds if retryable else None
    return diagnosis.model_copy(update=update)


def from_ledger(
    diagnosis: Diagnosis | PlainDiagnosis,
    source: RetryHistorySource,
    event: FailureEvent | PlainFailureEvent | None = None,
    *,
    limit: int = 20,
) -> Diagnosis | PlainDiagnosis:
    """:func:`weigh` with the history ``source`` holds for the diagnosis's fingerprint; the diagnosis
    unchanged when it says ``false`` already, or when the source cannot answer (logged).

    :param diagnosis: the analyzer's diagnosis
    :param source: the ledger
    :param event: the failure being diagnosed (its own earlier tries in the same run count)
    :param limit: read at most this many earlier attempts and occurrences
    """
    if diagnosis.retryable is False or not diagnosis.fingerprint:
        return diagnosis
    from qubinode_recovery_provider.store.queries import SameRun

    current = None
    if event is not None and event.dag_id and event.task_id and event.run_id and event.try_number:
        current = SameRun(event.dag_id, event.task_id, event.run_id, event.try_number)
    try:
        succeeded, failed = source.retry_outcomes(
            diagnosis.fingerprint, RETRY_ACTION, limit=limit, current=current
        )
    except Exception as exc:
        log.warning("retry evidence: the ledger could not answer (%s: %s)", type(exc).__name__, exc)
        return diagnosis
    return weigh(diagnosis, RetryHistory(int(succeeded), int(failed)))
