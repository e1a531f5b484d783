"""When automatic recovery may run: switches, approval threshold, dry run and the circuit breaker.

Switches: automatic recovery runs only when the global switch (config ``auto_recovery_enabled``, or
:func:`qubinode_recovery_provider.api.set_auto_recovery_enabled` in this process), the DAG (param or tag
``qubinode_auto_recovery``) and the call all allow it. Each level can only switch it off.

Approval: an option needs a person's go-ahead when its risk (or its action's) is above
``approval_risk_threshold``, its confidence is below ``min_auto_confidence``, or the plan marks it as
not automatic.

Circuit breaker: at most ``breaker_max_attempts`` automatic attempts per fingerprint and
``breaker_max_host_attempts`` per libvirt host within ``breaker_window_minutes``; beyond that the
executor escalates instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from qubinode_recovery_provider.models import AttemptOutcome, RecoveryAttempt, RecoveryOption, Risk, utcnow

AUTO_RECOVERY_PARAM = "qubinode_auto_recovery"
AUTO_RECOVERY_TAG = "qubinode_auto_recovery"
ESCALATE_ACTION = "escalate"
#: outcomes of attempts that really ran (or are running) and count for the breaker
COUNTED_OUTCOMES = frozenset({AttemptOutcome.PENDING, AttemptOutcome.SUCCEEDED, AttemptOutcome.FAILED})

_TRUE = frozenset({"true", "on", "yes", "1", "enabled"})
_FALSE = frozenset({"false", "off", "no", "0", "disabled"})


def parse_switch(value: Any) -> bool | None:
    """``True``/``False`` for the usual spellings of on and off; ``None`` for anything else.

    :param value: a bool, or a string such as ``"on"``, ``"off"``, ``"true"``, ``"0"``
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    return None


def dag_auto_recovery(
    params: Mapping[str, Any] | None = None, tags: Iterable[str] | None = None
) -> bool | None:
    """A DAG's own setting: param ``qubinode_auto_recovery`` first, then a tag
    ``qubinode_auto_recovery:off`` (or ``:on``); ``None`` when the DAG says nothing.

    :param params: the DAG's params (values may be Airflow ``Param`` objects with ``.value``)
    :param tags: the DAG's tags
    """
    if params and AUTO_RECOVERY_PARAM in params:
        raw = params[AUTO_RECOVERY_PARAM]
        parsed = parse_switch(getattr(raw, "value", raw))
        if parsed is not None:
            return parsed
    for tag in tags or ():
        name, _, value = str(tag).partition(":")
        if name.strip().lower() == AUTO_RECOVERY_TAG:
            parsed = parse_switch(value or "on")
            if parsed is not None:
                return parsed
    return None


@dataclass(frozen=True)
class RecoveryPolicy:
    """The rules the executor applies before it runs anything.

    :param auto_recovery_enabled: global switch
    :param dry_run: record what would run without running it
    :param approval_risk_threshold: options riskier than this need approval
    :param min_auto_confidence: options less confident than this need approval
    :param breaker_max_attempts: automatic attempts per fingerprint per window
    :param breaker_max_host_attempts: automatic attempts per host per window
    :param breaker_window: the window
    """

    auto_recovery_enabled: bool = True
    dry_run: bool = False
    approval_risk_threshold: Risk = Risk.LOW
    min_auto_confidence: float = 0.7
    breaker_max_attempts: int = 3
    breaker_max_host_attempts: int = 10
    breaker_window: timedelta = timedelta(minutes=60)

    @classmethod
    def from_config(cls, **overrides: Any) -> RecoveryPolicy:
        """The policy of the ``[qubinode_recovery]`` configuration, with ``overrides`` applied."""
        from qubinode_recovery_provider import config

        policy = cls(
            auto_recovery_enabled=config.get_bool("auto_recovery_enabled"),
            dry_run=config.get_bool("dry_run"),
            approval_risk_threshold=_risk(config.get("approval_risk_threshold")),
            min_auto_confidence=config.get_float("min_auto_confidence"),
            breaker_max_attempts=config.get_int("breaker_max_attempts"),
            breaker_max_host_attempts=config.get_int("breaker_max_host_attempts"),
            breaker_window=timedelta(minutes=config.get_int("breaker_window_minutes")),
        )
        return replace(policy, **overrides) if overrides else policy

    def auto_recovery_allowed(
        self, *, dag_setting: bool | None = None, call_setting: bool | None = None
    ) -> tuple[bool, str]:
        """Whether automatic recovery may run, and if not, which switch is off.

        :param dag_setting: the DAG's setting (:func:`dag_auto_recovery`)
        :param call_setting: the caller's setting
        """
        if not self.auto_recovery_enabled:
            return False, "automatic recovery is disabled globally (auto_recovery_enabled)"
        if dag_setting is False:
            return False, f"automatic recovery is disabled for this DAG ({AUTO_RECOVERY_PARAM})"
        if call_setting is False:
            return False, "automatic recovery is disabled for this call"
        return True, "automatic recovery is enabled"

    def is_dry_run(self, call_setting: bool | None = None) -> bool:
        """Dry run when configured or asked for by the call (a call cannot turn a configured dry run off)."""
        return self.dry_run or bool(call_setting)

    def approval_reasons(self, option: RecoveryOption, action_risk: Risk | None = None) -> list[str]:
        """Why ``option`` needs a person's approval; empty when it may run unattended.

        :param option: the option to run
        :param action_risk: the registered action's risk for these arguments; the higher of it and
            the option's risk counts (a plan cannot talk its way below the registry's risk)
        """
        reasons = []
        risk = max(option.risk, action_risk or Risk.NONE, key=lambda r: r.rank)
        if risk.rank > self.approval_risk_threshold.rank:
            reasons.append(
                f"risk {risk.value} is above the approval threshold {self.approval_risk_threshold.value}"
            )
        if option.confidence < self.min_auto_confidence:
            reasons.append(
                f"confidence {option.confidence:.2f} is below min_auto_confidence "
                f"{self.min_auto_confidence:.2f}"
            )
        if not option.automatic:
            reasons.append("the plan does not mark this option as automatic")
        return reasons


def _risk(value: str) -> Risk:
    try:
        return Risk(value.strip().lower())
    except ValueError:
        from qubinode_recovery_provider.config import ConfigError

        raise ConfigError(
            "[qubinode_recovery] approval_risk_threshold must be one of none, low, medium, high, "
            f"got {value!r}"
        ) from None


class AttemptHistory(Protocol):
    """Where past attempts are read from (the ledger)."""

    def attempts(
        self,
        fingerprint: str | None = None,
        host: str | None = None,
        since: datetime | None = None,
        automatic_only: bool = True,
    ) -> list[RecoveryAttempt]: ...


@dataclass(frozen=True)
class BreakerVerdict:
    """Whether the breaker lets an attempt through.

    :param open: True when the attempt must not run
    :param reason: why, for the ledger and the escalation
    """

    open: bool
    reason: str = ""


def counts_for_breaker(attempt: RecoveryAttempt) -> bool:
    """True for automatic attempts that ran or are running (not dry runs, blocked or escalations)."""
    return not attempt.dry_run and attempt.action != ESCALATE_ACTION and attempt.outcome in COUNTED_OUTCOMES


class CircuitBreaker:
    """At most N automatic attempts per fingerprint and M per host in a sliding window."""

    def __init__(self, policy: RecoveryPolicy) -> None:
        self.policy = policy

    def check(
        self,
        history: AttemptHistory,
        fingerprint: str,
        host: str | None = None,
        *,
        own_key: str | None = None,
        now: datetime | None = None,
    ) -> BreakerVerdict:
        """Check the limits before an attempt, or after inserting it (``own_key``).

        Before: open when N attempts already ran in the window. After: open when the attempt
        ``own_key`` is not among the first N of the window (so two executors racing past the first
        check cannot both run the N+1th attempt).

        :param history: the ledger
        :param fingerprint: the failure's fingerprint
        :param host: the libvirt host the failure happened on
        :param own_key: idempotency key of an attempt already inserted
        :param now: the current time (tests)
        """
        since = (now or utcnow()) - self.policy.breaker_window
        verdict = self._check_one(
            history.attempts(fingerprint=fingerprint, since=since, automatic_only=False),
            self.policy.breaker_max_attempts,
            own_key,
            "this fingerprint",
        )
        if verdict.open or not host:
            return verdict
        return self._check_one(
            history.attempts(host=host, since=since, automatic_only=False),
            self.policy.breaker_max_host_attempts,
            own_key,
            f"host {host}",
        )

    def reason_to_stop(
        self,
        history: AttemptHistory,
        fingerprint: str,
        host: str | None = None,
        *,
        own_key: str | None = None,
    ) -> str:
        """The breaker's reason to stop an attempt (see :meth:`check`), ``""`` when it may run; a ledger
        the breaker cannot read stops it too.

        :param history: the ledger
        :param fingerprint: the failure's fingerprint
        :param host: the libvirt host the failure happened on
        :param own_key: idempotency key of an attempt already inserted
        """
        try:
            verdict = self.check(history, fingerprint, host, own_key=own_key)
        except Exception as exc:
            return f"circuit breaker cannot read the ledger ({type(exc).__name__})"
        return verdict.reason if verdict.open else ""

    def _check_one(
        self, attempts: list[RecoveryAttempt], limit: int, own_key: str | None, scope: str
    ) -> BreakerVerdict:
        counted = sorted((a for a in attempts if counts_for_breaker(a)), key=_attempt_order)
        window = self._window_text()
        if own_key is None:
            if len(counted) >= limit:
                return BreakerVerdict(
                    True,
                    f"circuit breaker open: {len(counted)} automatic attempt(s) "
                    f"for {scope} in the last {window} (limit {limit})",
                )
            return BreakerVerdict(False)
        position = next((i for i, a in enumerate(counted) if a.idempotency_key == own_key), len(counted))
        if position >= limit:
            return BreakerVerdict(
                True,
                f"circuit breaker open: {position} automatic attempt(s) for "
                f"{scope} in the last {window} before this one (limit {limit})",
            )
        return BreakerVerdict(False)

    def _window_text(self) -> str:
        minutes = int(self.policy.breaker_window.total_seconds() // 60)
        return f"{minutes} min"


def _attempt_order(attempt: RecoveryAttempt) -> tuple[bool, int, datetime]:
    """Insertion order: the ledger's row id, then the start time for rows without one."""
    return (attempt.id is None, attempt.id or 0, attempt.started_at)
