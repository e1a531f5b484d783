"""Outcome learning: what happened when an action ran for a fingerprint adjusts its confidence.

The planner's base confidence for an option is the prior belief that the option fixes the failure. It
is the mean of a Beta prior with ``PRIOR_STRENGTH`` pseudo-observations:
``a = c * k`` successes and ``b = (1 - c) * k`` failures. Each recorded attempt of that action for that
fingerprint is an observation, and the learned confidence is the posterior mean
``(successes + a) / (successes + failures + a + b)``: with no history it is the base confidence, and the
more attempts are recorded, the more it follows what really happened. With the default strength of 8
and a base of 0.8, two failures in a row bring it to 0.64, below the default ``min_auto_confidence``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

log = logging.getLogger(__name__)

PRIOR_STRENGTH = 8.0


@runtime_checkable
class OutcomeStats(Protocol):
    """Anything that counts the outcomes of past attempts (the ledger does)."""

    def action_outcomes(self, fingerprint: str, action: str) -> tuple[int, int]:
        """Return ``(succeeded, failed)`` for ``action`` on failures with ``fingerprint``."""
        ...


@dataclass(frozen=True)
class LearnedConfidence:
    """A confidence adjusted by recorded outcomes.

    :param base: the planner's confidence before learning
    :param value: the posterior mean
    :param succeeded: recorded successes
    :param failed: recorded failures
    """

    base: float
    value: float
    succeeded: int = 0
    failed: int = 0

    @property
    def observations(self) -> int:
        return self.succeeded + self.failed

    def describe(self) -> str:
        """One sentence for a plan's ``reason``."""
        return (
            f"learned confidence {self.value:.2f} from {self.succeeded} success(es) and "
            f"{self.failed} failure(s) of this action for this fingerprint (base {self.base:.2f})"
        )


def posterior_confidence(base: float, succeeded: int, failed: int, strength: float = PRIOR_STRENGTH) -> float:
    """The Beta posterior mean for a prior centred on ``base`` after the given outcomes.

    :param base: prior mean (the planner's confidence), 0..1
    :param succeeded: successes observed
    :param failed: failures observed
    :param strength: prior weight in pseudo-observations
    """
    base = min(max(base, 0.0), 1.0)
    alpha = base * strength
    beta = (1.0 - base) * strength
    total = max(succeeded, 0) + max(failed, 0) + alpha + beta
    if total <= 0:
        return base
    return (max(succeeded, 0) + alpha) / total


def learn(
    stats: OutcomeStats | None,
    fingerprint: str,
    action: str,
    base: float,
    strength: float = PRIOR_STRENGTH,
) -> LearnedConfidence:
    """Adjust ``base`` with the outcomes ``stats`` recorded; unreadable stats leave it unchanged.

    :param stats: the ledger or another outcome counter; ``None`` disables learning
    :param fingerprint: the failure's fingerprint
    :param action: the registered action name
    :param base: the planner's confidence
    :param strength: prior weight in pseudo-observations
    """
    if stats is None:
        return LearnedConfidence(base=base, value=base)
    try:
        succeeded, failed = stats.action_outcomes(fingerprint, action)
    except Exception:
        log.warning("outcome statistics unavailable for %s; using the base confidence", action)
        return LearnedConfidence(base=base, value=base)
    value = posterior_confidence(base, succeeded, failed, strength)
    return LearnedConfidence(base=base, value=value, succeeded=succeeded, failed=failed)
