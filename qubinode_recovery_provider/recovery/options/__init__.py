"""The recovery options a plan can offer, one module per kind: RETRY (:mod:`.retry`), WAIT and restart
(:mod:`.wait`), ROLLBACK (:mod:`.rollback`), and the options a person carries out, MANUAL_FIX, SKIP and
ESCALATE (:mod:`.manual`). :func:`build_candidates` builds every one that applies; the ranking is
:mod:`qubinode_recovery_provider.recovery.ranking`'s.
"""

from __future__ import annotations

from collections.abc import Callable

from qubinode_recovery_provider.recovery.options.base import Candidate, PlanContext
from qubinode_recovery_provider.recovery.options.manual import (
    escalate_candidates,
    manual_fix_candidates,
    skip_candidates,
)
from qubinode_recovery_provider.recovery.options.retry import retry_candidates
from qubinode_recovery_provider.recovery.options.rollback import rollback_candidates
from qubinode_recovery_provider.recovery.options.wait import wait_candidates

__all__ = ["Candidate", "PlanContext", "build_candidates"]


def build_candidates(ctx: PlanContext) -> list[Candidate]:
    builders: list[Callable[[PlanContext], list[Candidate]]] = [
        retry_candidates,
        wait_candidates,
        manual_fix_candidates,
        rollback_candidates,
        skip_candidates,
        escalate_candidates,
    ]
    return [candidate for build in builders for candidate in build(ctx)]
