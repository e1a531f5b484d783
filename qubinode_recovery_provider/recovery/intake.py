"""Whether a failure or a shadow-scan finding starts a recovery run. Plain Python (no Airflow import), the
one place these rules exist: the notifier
(:class:`~qubinode_recovery_provider.notifications.RecoveryNotifier`) asks :func:`failure_starts_run`
for each failure it records, the shadow scan (:func:`~qubinode_recovery_provider.shadow.handoff.hand_off`)
asks :func:`finding_starts_run` for each finding.

A failure starts a recovery run, in this order (the window is the circuit breaker's,
``breaker_window_minutes``):

1. not when this host requested a run for the fingerprint within the window -- a request still
   *pending* is sent again;
2. not when the incident is ``recovering`` or ``escalated``;
3. yes for a new incident (its first occurrence);
4. not for a repeat within the window after the incident was first seen;
5. not when the circuit breaker is open for the incident, or its state cannot be read;
6. yes otherwise: a repeat of an open incident with no recovery run in the window.

A run started for a failure of a DAG that turned automatic recovery off (param or tag
``qubinode_auto_recovery``) starts with ``enable_auto_recovery`` off: its action waits for a person.

A finding starts a recovery run when recovery runs were asked for, it is new and critical, and fewer
than the scan's cap were started.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from qubinode_recovery_provider.models import IncidentState, Severity, utcnow
from qubinode_recovery_provider.recovery.policy import CircuitBreaker, RecoveryPolicy

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import Incident, ShadowError
    from qubinode_recovery_provider.recovery.policy import AttemptHistory

#: The window when the recovery policy cannot be read (the default ``breaker_window_minutes``).
DEFAULT_WINDOW = RecoveryPolicy().breaker_window


@dataclass(frozen=True)
class EarlierRequest:
    """The last recovery run this host requested for the fingerprint.

    :param requested_at: when it was first requested
    :param status: ``pending`` (not delivered yet), ``sent`` or ``failed``
    """

    requested_at: datetime
    status: str

    @property
    def pending(self) -> bool:
        """Not delivered yet."""
        return self.status == "pending"


@dataclass(frozen=True)
class IntakeVerdict:
    """Whether to start a recovery run, and why.

    :param start: start a new recovery run
    :param reason: why (or why not), one line
    :param resend: send the earlier request again (it is still pending, within the window)
    :param enable_auto_recovery: the run's ``enable_auto_recovery``; False when the failed DAG turned
        automatic recovery off, None to leave the recovery DAG's default
    """

    start: bool
    reason: str
    resend: bool = False
    enable_auto_recovery: bool | None = None


def failure_starts_run(
    incident: Incident,
    earlier: EarlierRequest | None,
    history: AttemptHistory,
    policy: RecoveryPolicy | None,
    *,
    dag_auto_recovery: bool | None = None,
    now: datetime | None = None,
) -> IntakeVerdict:
    """Whether this occurrence of ``incident`` starts a recovery run (see the module docstring).

    :param incident: the incident after this occurrence was counted
    :param earlier: this host's last request for the fingerprint, if any
    :param history: the ledger, read by the circuit breaker (only for a repeat after the window)
    :param policy: the recovery policy (window and breaker limits); None when it cannot be read: the
        default window applies and the breaker's state is unknown
    :param dag_auto_recovery: the failed DAG's switch (param or tag ``qubinode_auto_recovery``)
    :param now: the current time (tests)
    """
    now = now or utcnow()
    window = policy.breaker_window if policy is not None else DEFAULT_WINDOW
    if earlier is not None and now - earlier.requested_at < window:
        minutes = (now - earlier.requested_at).total_seconds() / 60
        why = f"a recovery run was requested {minutes:.0f} min ago ({earlier.status})"
        return IntakeVerdict(False, why, resend=earlier.pending)
    if incident.state in (IncidentState.RECOVERING, IncidentState.ESCALATED):
        return IntakeVerdict(False, f"the incident is {incident.state.value}")
    switch = False if dag_auto_recovery is False else None
    if incident.occurrences <= 1:
        return IntakeVerdict(True, "new incident", enable_auto_recovery=switch)
    if now - incident.first_seen < window:
        why = f"repeat #{incident.occurrences} inside the circuit breaker window of a new incident"
        return IntakeVerdict(False, why)
    stop = _breaker_stops(history, policy, incident)
    if stop:
        return IntakeVerdict(False, stop)
    why = f"repeat #{incident.occurrences} of an open incident, no recovery run in the window"
    return IntakeVerdict(True, why, enable_auto_recovery=switch)


def finding_starts_run(
    finding: ShadowError, *, is_new: bool, start_recovery: bool, started: int, max_runs: int
) -> bool:
    """Whether a shadow-scan finding starts a recovery run (see the module docstring).

    :param finding: the finding
    :param is_new: the ledger had not seen it before
    :param start_recovery: the scan was asked to start recovery runs
    :param started: recovery runs this scan started so far
    :param max_runs: the most recovery runs one scan starts
    """
    return start_recovery and is_new and finding.severity == Severity.CRITICAL and started < max_runs


def _breaker_stops(history: AttemptHistory, policy: RecoveryPolicy | None, incident: Incident) -> str:
    """The circuit breaker's reason not to start a repeat; a state it cannot read counts as open."""
    if policy is None:
        return "circuit breaker state unknown (the recovery policy cannot be read); repeat not started"
    host = incident.hosts[0] if incident.hosts else None
    return CircuitBreaker(policy).reason_to_stop(history, incident.fingerprint, host)


__all__ = [
    "DEFAULT_WINDOW",
    "EarlierRequest",
    "IntakeVerdict",
    "failure_starts_run",
    "finding_starts_run",
]
