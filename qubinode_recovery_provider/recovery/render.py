"""Render a :class:`~qubinode_recovery_provider.models.RecoveryPlan` as Markdown (people, issues) or
JSON (machines, the ledger, ``qubinode-recovery plan --json``)."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.output_limits import VERBOSE_HINT, more_note, shown_steps

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import Diagnosis, RecoveryOption, RecoveryPlan
    from qubinode_recovery_provider.output_limits import OutputLimits

_BACKTICKS_RE = re.compile(r"`+")


def plan_to_dict(plan: RecoveryPlan) -> dict[str, Any]:
    """The plan as a JSON-ready dict (enums as values, datetimes as ISO strings)."""
    data = plan.model_dump(mode="json")
    data["recommended"] = data["options"][plan.recommended_index] if plan.recommended is not None else None
    return data


def plan_to_json(plan: RecoveryPlan, *, indent: int | None = 2) -> str:
    """The plan as JSON; ``recommended`` repeats the recommended option for convenience.

    :param indent: JSON indentation; None for one line
    """
    return json.dumps(plan_to_dict(plan), indent=indent, sort_keys=False)


def plan_to_markdown(
    plan: RecoveryPlan,
    *,
    diagnosis: Diagnosis | None = None,
    level: int = 2,
    limits: OutputLimits | None = None,
    more_hint: str = VERBOSE_HINT,
) -> str:
    """The plan as a Markdown document: summary, option table, then every option in detail.

    :param plan: the plan
    :param diagnosis: adds the diagnosis's verdict (category, confidence, patterns) when given
    :param level: heading level of the title (2 fits inside an issue or report)
    :param limits: show at most these many check and fix steps per option
        (:mod:`~qubinode_recovery_provider.output_limits`), and say how many are left out; None: all
    :param more_hint: how the reader sees the steps left out
    """
    head = "#" * max(1, min(level, 5))
    lines = [f"{head} Recovery plan: {plan.root_cause.value.replace('_', ' ')} failure", ""]
    lines += _facts(plan, diagnosis)
    lines += _recommended(plan)
    lines += _table(plan)
    for option in plan.options:
        lines += _option_section(option, head + "#", limits, more_hint)
    return "\n".join(lines).rstrip() + "\n"


def _code(text: object) -> str:
    """An inline code span that survives backticks inside ``text``."""
    value = str(text).replace("\n", " ")
    longest = max((len(run) for run in _BACKTICKS_RE.findall(value)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def _cell(text: object) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _duration(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds}s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"


def _facts(plan: RecoveryPlan, diagnosis: Diagnosis | None) -> list[str]:
    facts = [f"- Fingerprint: {_code(plan.fingerprint)}"]
    where = [
        f"{label} {_code(value)}"
        for label, value in (("DAG", plan.dag_id), ("task", plan.task_id), ("run", plan.run_id))
        if value
    ]
    if where:
        facts.append(f"- Failed: {', '.join(where)}")
    if diagnosis is not None:
        retryable = {True: "yes", False: "no", None: "unknown"}[diagnosis.retryable]
        facts.append(
            f"- Diagnosis: {diagnosis.root_cause.value}, confidence {diagnosis.confidence:.2f}, "
            f"severity {diagnosis.severity.value}, retryable {retryable}"
        )
        patterns = ", ".join(_code(m.pattern_id) for m in diagnosis.matched_patterns[:8])
        if patterns:
            facts.append(f"- Matched patterns: {patterns}")
    facts.append(f"- Created: {plan.created_at.isoformat(timespec='seconds')}")
    return [*facts, ""]


def _recommended(plan: RecoveryPlan) -> list[str]:
    best = plan.recommended
    if best is None:
        return ["**No option could be planned.**", ""]
    lines = [f"**Recommended:** {best.priority}. {best.title} ({_badge(best)})", ""]
    if best.reason:
        lines += [f"> {best.reason}", ""]
    return lines


def _badge(option: RecoveryOption) -> str:
    how = f"automatic: {_code(option.action)}" if option.automatic and option.action else "by a person"
    if not option.automatic and option.action:
        how = f"after approval: {_code(option.action)}"
    return f"{option.type.value}, confidence {option.confidence:.2f}, risk {option.risk.value}, {how}"


def _table(plan: RecoveryPlan) -> list[str]:
    lines = [
        "| # | Option | Type | Confidence | Risk | Expected | Runs |",
        "|---|---|---|---|---|---|---|",
    ]
    for option in plan.options:
        runs = "automatic" if option.automatic else ("after approval" if option.action else "by a person")
        lines.append(
            f"| {option.priority} | {_cell(option.title)} | {option.type.value} | {option.confidence:.2f} | "
            f"{option.risk.value} | {_duration(option.expected_duration_seconds)} | {runs} |"
        )
    return [*lines, ""]


def _option_section(
    option: RecoveryOption, head: str, limits: OutputLimits | None, more_hint: str
) -> list[str]:
    lines = [f"{head} {option.priority}. {option.title}", ""]
    if option.reason and option.priority != 1:
        lines += [f"_{option.reason}_", ""]
    steps = option.steps if limits is None else shown_steps(option.steps, limits)
    lines += _numbered("Steps", steps)
    if len(steps) < len(option.steps):
        lines += [f"_{more_note(len(option.steps) - len(steps), 'step', more_hint)}._", ""]
    lines += _bullets("Prerequisites", option.prerequisites)
    lines += _bullets("Success criteria", option.success_criteria)
    lines += _bullets("Rollback", option.rollback_steps)
    if option.action:
        lines += [f"Action {_code(option.action)} with arguments:", "", *_json_block(option.action_args)]
    return lines


def _json_block(data: Any) -> list[str]:
    text = json.dumps(data, indent=2, sort_keys=True)
    longest = max((len(run) for run in _BACKTICKS_RE.findall(text)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}json", text, fence, ""]


def _numbered(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    return [f"**{title}**", "", *(f"{n}. {_line(item)}" for n, item in enumerate(items, 1)), ""]


def _bullets(title: str, items: list[str]) -> list[str]:
    if not items:
        return []
    return [f"**{title}**", "", *(f"- {_line(item)}" for item in items), ""]


def _line(text: str) -> str:
    return " ".join(text.split())
