"""Ranking the options of a plan: outcome learning adjusts each option's confidence, the playbook's
preference order ranks them, options meant to run unattended whose confidence is below
``min_auto_confidence`` are demoted behind the ones a person carries out, and the recommended option's
``reason`` says why it won and why the preferred ones did not."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qubinode_recovery_provider.recovery.learning import OutcomeStats, learn
from qubinode_recovery_provider.recovery.options.base import PATTERN_ID_RE, A, Candidate, PlanContext

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import RecoveryActionType, RecoveryOption

_ABSENT = {
    A.WAIT: "no known service or resource to wait for was identified",
    A.ROLLBACK: "no rollback handler or checkpoint is registered for this task",
}


def learn_confidence(
    candidate: Candidate, ctx: PlanContext, stats: OutcomeStats, strength: float
) -> Candidate:
    """Adjust the confidence of an option with an action by the recorded outcomes of that action on this
    fingerprint (:func:`~qubinode_recovery_provider.recovery.learning.learn`); unchanged without any.

    :param candidate: the option
    :param ctx: the plan's context
    :param stats: source of ``action_outcomes``
    :param strength: weight of the base confidence against recorded outcomes
    """
    option = candidate.option
    if option.action is None:
        return candidate
    learned = learn(stats, ctx.diagnosis.fingerprint, option.action, option.confidence, strength)
    if learned.observations == 0:
        return candidate
    candidate.learned = learned
    candidate.option = option.model_copy(update={"confidence": round(learned.value, 4)})
    candidate.notes.append(learned.describe())
    return candidate


def rank(candidates: list[Candidate], ctx: PlanContext) -> list[RecoveryOption]:
    order = ctx.playbook.order(ctx.retryable)
    for candidate in candidates:
        _mark_demotion(candidate, ctx)
    candidates.sort(
        key=lambda c: (
            c.demoted,
            _order_index(order, c.option.type),
            -c.option.confidence,
            c.option.risk.rank,
        )
    )
    ranked = []
    for index, candidate in enumerate(candidates):
        reason = _recommended_reason(candidate, candidates, ctx) if index == 0 else _short_reason(candidate)
        ranked.append(candidate.option.model_copy(update={"priority": index + 1, "reason": reason}))
    return ranked


def _order_index(order: tuple[RecoveryActionType, ...], kind: RecoveryActionType) -> int:
    return order.index(kind) if kind in order else len(order)


def _mark_demotion(candidate: Candidate, ctx: PlanContext) -> None:
    option = candidate.option
    if not candidate.intended_auto or option.action is None:
        return
    if option.confidence >= ctx.min_auto:
        return
    candidate.demoted = True
    candidate.option = option.model_copy(update={"automatic": False})
    candidate.notes.append(
        f"demoted: confidence {option.confidence:.2f} is below min_auto_confidence {ctx.min_auto:.2f}"
    )


def _short_reason(candidate: Candidate) -> str:
    return "; ".join([candidate.note, *candidate.notes])


def _recommended_reason(best: Candidate, candidates: list[Candidate], ctx: PlanContext) -> str:
    pb = ctx.playbook
    why = pb.why_retryable if ctx.retryable else pb.why_not_retryable
    option = best.option
    how = "can run automatically" if option.automatic else "needs a person"
    cause = ctx.diagnosis.root_cause.value
    parts = [
        f"{option.type.value.upper()} is recommended for this {cause} failure: {why}.",
        f"It {best.note} (confidence {option.confidence:.2f}, risk {option.risk.value}, {how}).",
    ]
    parts += [f"{note[0].upper()}{note[1:]}." for note in best.notes]
    parts += _passed_over(best, candidates, ctx)
    patterns = [m.pattern_id for m in ctx.diagnosis.matched_patterns if PATTERN_ID_RE.match(m.pattern_id)]
    if patterns:
        parts.append(f"Matched patterns: {', '.join(patterns[:5])}.")
    return " ".join(parts)


def _passed_over(best: Candidate, candidates: list[Candidate], ctx: PlanContext) -> list[str]:
    """Sentences on each option type the playbook prefers over the recommended one."""
    order = ctx.playbook.order(ctx.retryable)
    preferred = order[: _order_index(order, best.option.type)]
    by_type: dict[RecoveryActionType, list[Candidate]] = {}
    for candidate in candidates:
        by_type.setdefault(candidate.option.type, []).append(candidate)
    sentences = []
    for kind in preferred:
        found = by_type.get(kind)
        if not found:
            sentences.append(f"{kind.value.upper()} is not offered: {_ABSENT.get(kind, 'not applicable')}.")
            continue
        for candidate in found:
            if candidate.demoted:
                sentences.append(
                    f"{kind.value.upper()} ({candidate.option.title}) is not recommended: "
                    f"{'; '.join(candidate.notes)}."
                )
    return sentences
