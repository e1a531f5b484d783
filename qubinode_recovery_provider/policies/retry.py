"""A retry policy (Airflow 3.3, AIP-105) that lets the failure's diagnosis decide.

- **FAIL** at once when the diagnosis says a retry cannot help (a rejected SSH key, a wrong password,
  a configuration error, no KVM on the host) and is confident enough: the remaining retries would
  burn time and fail the same way.
- **RETRY** with a delay that fits the cause (DNS, a reset connection, a registry 503: the
  diagnosis's ``retry_delay_seconds``, doubled for each earlier try, capped).
- **DEFAULT** when unsure: the task's own ``retries`` and ``retry_delay`` apply.

The exception of a shell task often says only ``exit status 1``, so the policy also reads the tail of
the current attempt's log. It runs in the worker, before the task's failure callbacks; the diagnosis is
cheap once the pattern library is loaded (see ``bench/bench_notifier.py``).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk.definitions.retry_policy import RetryAction, RetryDecision, RetryPolicy

from qubinode_recovery_provider.utils import task_log_capture

if TYPE_CHECKING:
    from airflow.sdk.definitions.context import Context

    from qubinode_recovery_provider.deadline import Deadline
    from qubinode_recovery_provider.diagnosis.plain import PlainDiagnosis, PlainFailureEvent
    from qubinode_recovery_provider.models import Diagnosis, FailureEvent
    from qubinode_recovery_provider.store import Ledger
    from qubinode_recovery_provider.utils.task_failure import LogTail

log = logging.getLogger(__name__)

#: Longest reason Airflow stores on the task instance.
MAX_REASON = 500
MAX_EVIDENCE = 160
#: Most seconds the retry-evidence read waits for a ledger lock or connection.
LEDGER_TIMEOUT = 2.0


@dataclass(frozen=True)
class PolicySettings:
    """The knobs of :class:`DiagnosisRetryPolicy` (see its docstring)."""

    fail_confidence: float = 0.8
    retry_confidence: float = 0.5
    backoff: float = 2.0
    max_delay_seconds: int = 1800
    min_delay_seconds: int = 0
    log_tail_lines: int | None = None
    push_xcom: bool = True
    budget_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("fail_confidence", "retry_confidence"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if self.backoff < 1.0:
            raise ValueError(f"backoff must be at least 1, got {self.backoff!r}")
        if self.min_delay_seconds < 0 or self.max_delay_seconds < self.min_delay_seconds:
            raise ValueError("need 0 <= min_delay_seconds <= max_delay_seconds")
        if self.log_tail_lines is not None and self.log_tail_lines < 0:
            raise ValueError("log_tail_lines must not be negative")
        if self.budget_seconds is not None and not 0 < self.budget_seconds <= 3600:
            raise ValueError(f"budget_seconds must be in (0, 3600], got {self.budget_seconds!r}")


class DiagnosisRetryPolicy(RetryPolicy):
    """Retry, fail fast or leave it to the task's ``retries``, by the diagnosis of the failure.

    ``retry_policy=DiagnosisRetryPolicy()`` on a task, in ``default_args`` or on ``partial()``. The policy
    can only shorten the retries: it never adds tries beyond ``retries``.

    The reason of each decision is logged by Airflow (``Retry policy decision action=... reason=...``),
    stored on the task instance as ``retry_reason`` for a RETRY (Airflow 3.3 stores it for RETRY only),
    and, when ``push_xcom`` is on, pushed as the XCom ``qubinode_retry_decision`` so the UI shows it
    for a FAIL too.

    :param fail_confidence: fail fast only when the diagnosis says "not retryable" with at least this
        confidence.
    :param retry_confidence: retry with the cause's delay only when the diagnosis says "retryable" with
        at least this confidence.
    :param backoff: each earlier try multiplies the cause's delay by this factor.
    :param max_delay_seconds: the longest delay the policy asks for.
    :param min_delay_seconds: the shortest delay the policy asks for.
    :param log_tail_lines: how many lines of the attempt's log to read; default
        ``[qubinode_recovery] log_tail_lines``.
    :param push_xcom: push the decision as XCom ``qubinode_retry_decision``.
    :param budget_seconds: the most time the decision takes; when the diagnosis is not ready by then the
        task's own retries apply (DEFAULT). Default ``[qubinode_recovery] policy_budget_seconds`` (5 s).
    """

    XCOM_KEY: ClassVar[str] = "qubinode_retry_decision"
    TYPE_NAME: ClassVar[str] = "DiagnosisRetryPolicy"

    def __init__(
        self,
        *,
        fail_confidence: float = 0.8,
        retry_confidence: float = 0.5,
        backoff: float = 2.0,
        max_delay_seconds: int = 1800,
        min_delay_seconds: int = 0,
        log_tail_lines: int | None = None,
        push_xcom: bool = True,
        budget_seconds: float | None = None,
    ) -> None:
        self.settings = PolicySettings(
            fail_confidence=float(fail_confidence),
            retry_confidence=float(retry_confidence),
            backoff=float(backoff),
            max_delay_seconds=int(max_delay_seconds),
            min_delay_seconds=int(min_delay_seconds),
            log_tail_lines=None if log_tail_lines is None else int(log_tail_lines),
            push_xcom=bool(push_xcom),
            budget_seconds=None if budget_seconds is None else float(budget_seconds),
        )
        task_log_capture.ensure_installed()  # keep this task's log lines in memory (evidence)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in asdict(self.settings).items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DiagnosisRetryPolicy) and other.settings == self.settings

    def __hash__(self) -> int:
        return hash(self.settings)

    # --- Airflow entry point ----------------------------------------------------------------------

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Context | None = None,
    ) -> RetryDecision:
        """Diagnose the failure and decide; never raises (an internal error gives DEFAULT).

        :param exception: the exception that failed the task.
        :param try_number: the attempt that failed (1-based).
        :param max_tries: the task's ``retries``.
        :param context: the task's context (gives the attempt whose log is read).
        """
        task_log_capture.ensure_installed()  # picks up a reconfigured logging for later tries
        from qubinode_recovery_provider.deadline import Deadline, call_within

        budget = self.budget()
        deadline = Deadline(budget)
        result = call_within(
            lambda: self.diagnose(exception, try_number, context, deadline), budget, "qubinode-retry-policy"
        )
        if not result.done:
            log.warning("DiagnosisRetryPolicy: no diagnosis within %gs; the task's retries apply", budget)
            return RetryDecision(
                action=RetryAction.DEFAULT,
                reason=f"qubinode: no diagnosis within {budget:g}s; the task's retries apply",
            )
        try:
            if result.error is not None:
                raise result.error
            assert result.value is not None
            diagnosis, tail = result.value
            decision = self.decide(diagnosis, try_number, tail, max_tries)
        except Exception as exc:
            log.warning("DiagnosisRetryPolicy could not diagnose the failure: %s", exc, exc_info=True)
            return RetryDecision(
                action=RetryAction.DEFAULT,
                reason=f"qubinode: no diagnosis ({type(exc).__name__}); the task's retries apply",
            )
        if self.settings.push_xcom:
            self._push_xcom(context, decision, diagnosis, try_number, tail)
        _log_headline(decision, diagnosis)
        return decision

    # --- steps ------------------------------------------------------------------------------------

    def budget(self) -> float:
        """Seconds the decision may take: ``budget_seconds``, else ``[qubinode_recovery]
        policy_budget_seconds``."""
        if self.settings.budget_seconds is not None:
            return self.settings.budget_seconds
        from qubinode_recovery_provider import config

        try:
            return max(0.1, config.get_float("policy_budget_seconds"))
        except config.ConfigError:
            return float(config.OPTIONS["policy_budget_seconds"].default)

    def diagnose(
        self,
        exception: BaseException | str | None,
        try_number: int,
        context: Context | None,
        deadline: Deadline | None = None,
    ) -> tuple[Diagnosis | PlainDiagnosis, LogTail]:
        """Diagnose the attempt from its log tail and its exception. The diagnosis is the analyzer's
        plain one (:class:`~qubinode_recovery_provider.diagnosis.plain.PlainDiagnosis`: the model's fields,
        ``to_model()`` gives the model): deciding needs no pydantic model.

        :param exception: the exception.
        :param try_number: the attempt.
        :param context: the task's context.
        :param deadline: when the analysis must stop reading and answer with what it has.
        """
        from qubinode_recovery_provider.utils import task_failure as tf

        key = tf.task_key(context, try_number)
        tail = tf.read_attempt_log(key, tf.log_tail_lines(self.settings.log_tail_lines))
        event = tf.plain_failure_event(key, exception, tail)
        end = deadline.end if deadline is not None else None
        diagnosis = tf.shared_analyzer().analyze(event, deadline=end, plain=True)
        return with_retry_evidence(diagnosis, event, deadline), tail

    def decide(
        self,
        diagnosis: Diagnosis | PlainDiagnosis,
        try_number: int,
        tail: LogTail | None = None,
        max_tries: int | None = None,
    ) -> RetryDecision:
        """The decision for a diagnosis (pure: no I/O).

        :param diagnosis: the diagnosis of the failure.
        :param try_number: the attempt that failed (1-based).
        :param tail: where the text came from, for the reason.
        :param max_tries: the task's retries; a retry is only promised while one is left (Airflow never
            retries past them, whatever a policy answers).
        """
        s = self.settings
        where = _source(tail)
        if diagnosis.retryable is False and diagnosis.confidence >= s.fail_confidence:
            reason = f"{_label(diagnosis)}: a retry cannot help. {_advice(diagnosis)}{_evidence(diagnosis)}"
            return RetryDecision.fail(_clip(reason + where))
        if diagnosis.retryable is True and diagnosis.confidence >= s.retry_confidence:
            if max_tries is not None and try_number > max_tries:
                reason = (
                    f"{_label(diagnosis)}: transient, but no retry is left (retries={max_tries}): the task "
                    f"fails here{_evidence(diagnosis)}"
                )
                return RetryDecision(action=RetryAction.DEFAULT, reason=_clip(reason + where))
            delay = self.delay_for(diagnosis, try_number)
            reason = (
                f"{_label(diagnosis)}: transient, retry in {delay}s (try {try_number}){_evidence(diagnosis)}"
            )
            return RetryDecision.retry(timedelta(seconds=delay), _clip(reason + where))
        verdict = {True: "retryable", False: "not retryable", None: "retryable unknown"}[diagnosis.retryable]
        ledger = f" ({diagnosis.retry_evidence})" if diagnosis.retry_evidence else ""
        reason = f"{_label(diagnosis)}, {verdict}: not sure enough, the task's retries apply{ledger}"
        return RetryDecision(action=RetryAction.DEFAULT, reason=_clip(reason + where))

    def delay_for(self, diagnosis: Diagnosis | PlainDiagnosis, try_number: int) -> int:
        """Seconds to wait before the next try: the cause's delay, grown by ``backoff`` per earlier try.

        :param diagnosis: the diagnosis (its ``retry_delay_seconds``).
        :param try_number: the attempt that failed (1-based).
        """
        s = self.settings
        base = diagnosis.retry_delay_seconds or 60
        exponent = max(0, int(try_number or 1) - 1)
        try:
            delay = base * (s.backoff**exponent)
        except OverflowError:
            delay = float(s.max_delay_seconds)
        return int(min(max(delay, s.min_delay_seconds), s.max_delay_seconds))

    def _push_xcom(
        self,
        context: Context | None,
        decision: RetryDecision,
        diagnosis: Diagnosis | PlainDiagnosis,
        try_number: int,
        tail: LogTail,
    ) -> None:
        ti = (context or {}).get("ti")
        if ti is None or not hasattr(ti, "xcom_push"):
            return
        value = {
            "action": decision.action.value,
            "reason": decision.reason,
            "delay_seconds": decision.retry_delay.total_seconds() if decision.retry_delay else None,
            "root_cause": diagnosis.root_cause.value,
            "confidence": diagnosis.confidence,
            "retryable": diagnosis.retryable,
            "retry_evidence": diagnosis.retry_evidence,
            "pattern": diagnosis.primary_pattern,
            "fingerprint": diagnosis.fingerprint,
            "try_number": try_number,
            "text_source": tail.source,
        }
        try:
            ti.xcom_push(key=self.XCOM_KEY, value=value)
        except Exception as exc:
            log.warning("DiagnosisRetryPolicy could not push its decision as XCom: %s", exc)

    # --- serialisation ------------------------------------------------------------------------------

    def serialize(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`deserialize` turns it back into an equal policy."""
        return {"__type": self.TYPE_NAME, **asdict(self.settings)}

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> DiagnosisRetryPolicy:
        """Rebuild a policy from :meth:`serialize`'s dict (unknown keys are ignored).

        :param data: the dict.
        """
        known = {f.name for f in fields(PolicySettings)}
        return cls(**{k: v for k, v in data.items() if k in known})


def with_retry_evidence(
    diagnosis: Diagnosis | PlainDiagnosis, event: FailureEvent | PlainFailureEvent, deadline: Deadline | None
) -> Diagnosis | PlainDiagnosis:
    """The diagnosis with its retry claim decided by the ledger's record of earlier retries of this
    failure, where that record is conclusive (:mod:`~qubinode_recovery_provider.diagnosis.retry_evidence`).
    A ``false`` claim is left alone (no ledger read); an unreachable ledger leaves the diagnosis as it is.
    The read waits at most a third of the time left (2 s at most) for a lock or a connection.

    :param diagnosis: the analyzer's diagnosis.
    :param event: the failure (its own earlier tries in this run count).
    :param deadline: the policy's deadline.
    """
    if diagnosis.retryable is False:
        return diagnosis
    from qubinode_recovery_provider.diagnosis import retry_evidence

    timeout = min(LEDGER_TIMEOUT, deadline.remaining() / 3) if deadline is not None else LEDGER_TIMEOUT
    if timeout < 0.05:
        return diagnosis
    try:
        ledger = _evidence_ledger(timeout)
    except Exception as exc:
        log.warning("DiagnosisRetryPolicy: no ledger for retry evidence (%s: %s)", type(exc).__name__, exc)
        return diagnosis
    if ledger is None:
        return diagnosis
    return retry_evidence.from_ledger(diagnosis, ledger, event)


_LEDGERS: dict[str, Ledger] = {}
_LEDGERS_LOCK = threading.Lock()


def _evidence_ledger(timeout: float) -> Ledger | None:
    """The configured ledger, one per URL and process (not the runtime's: importing it costs a fresh
    task process more than the read); None when it is a SQLite file that does not exist yet (no
    history, and no file is created here)."""
    from qubinode_recovery_provider.store import Ledger, resolve_ledger_url
    from qubinode_recovery_provider.store.engine import normalize_url, sqlite_path

    url = resolve_ledger_url()
    path = sqlite_path(normalize_url(url))
    if path is not None and not path.exists():
        return None
    with _LEDGERS_LOCK:
        ledger = _LEDGERS.get(url)
        if ledger is None:
            ledger = _LEDGERS[url] = Ledger(url, timeout=timeout, auto_flush_interval=0)
        return ledger


def _label(diagnosis: Diagnosis | PlainDiagnosis) -> str:
    pattern = f", {diagnosis.primary_pattern}" if diagnosis.primary_pattern else ""
    return f"qubinode: {diagnosis.root_cause.value} ({diagnosis.confidence:.2f}{pattern})"


def _advice(diagnosis: Diagnosis | PlainDiagnosis) -> str:
    first = diagnosis.recommended_actions[0] if diagnosis.recommended_actions else diagnosis.summary
    return f"{first.rstrip('.')}." if first else ""


def _evidence(diagnosis: Diagnosis | PlainDiagnosis) -> str:
    ledger = f" {diagnosis.retry_evidence}." if diagnosis.retry_evidence else ""
    return ledger + _line_evidence(diagnosis)


def _line_evidence(diagnosis: Diagnosis | PlainDiagnosis) -> str:
    if not diagnosis.matched_patterns:
        return ""
    line = " ".join(diagnosis.matched_patterns[0].evidence.split())
    if len(line) > MAX_EVIDENCE:
        line = line[: MAX_EVIDENCE - 3] + "..."
    return f' Evidence: "{line}"'


def _source(tail: LogTail | None) -> str:
    if tail is None:
        return ""
    if tail.lines:
        return f" [from the {tail.source}]"
    return f" [{tail.source}: decided on the exception text only]"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _log_headline(decision: RetryDecision, diagnosis: Diagnosis | PlainDiagnosis) -> None:
    """One short line at the top of the task log (Airflow's own "Retry policy decision" line, with the
    whole reason, stays in the collapsed "Post Execute" group)."""
    from qubinode_recovery_provider.utils.log_groups import log_visibly

    delay = int(decision.retry_delay.total_seconds()) if decision.retry_delay else 0
    what = {
        RetryAction.FAIL: "fail now, a retry cannot help",
        RetryAction.RETRY: f"retry in {delay}s",
        RetryAction.DEFAULT: "the task's own retries apply",
    }.get(decision.action, str(decision.action))
    if decision.action is RetryAction.DEFAULT and "no retry is left" in (decision.reason or ""):
        what = "no retry left, the task fails"
    try:
        log_visibly(
            log,
            logging.INFO,
            "qubinode: %s (%.2f) - %s",
            diagnosis.root_cause.value,
            diagnosis.confidence,
            what,
        )
    except Exception:  # never let a log line change the decision
        log.debug("headline not logged", exc_info=True)


__all__ = ["DiagnosisRetryPolicy", "PolicySettings"]
