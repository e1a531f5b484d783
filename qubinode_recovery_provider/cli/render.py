"""Human-readable reports for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qubinode_recovery_provider.output_limits import OutputLimits, more_note, shown

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import Diagnosis

_RETRY_TEXT = {True: "yes", False: "no", None: "not known (leave it to the task's own retries)"}


def render_diagnosis(d: Diagnosis, limits: OutputLimits | None = None) -> str:
    """A short report: verdict, evidence, what to do.

    :param d: the diagnosis.
    :param limits: how many actions and commands to show (default: the configured limits).
    """
    limits = limits or OutputLimits.configured()
    lines = [
        f"Root cause:   {d.root_cause.value}  (confidence {d.confidence:.2f}, severity {d.severity.value})",
        f"Summary:      {d.summary}",
        f"Retryable:    {_RETRY_TEXT[d.retryable]}"
        + (f", after {d.retry_delay_seconds}s" if d.retryable and d.retry_delay_seconds else ""),
        f"Fingerprint:  {d.fingerprint}",
    ]
    if d.affected_services:
        lines.append(f"Services:     {', '.join(d.affected_services)}")
    if d.decided_by == "model" and d.model is not None:
        from qubinode_recovery_provider.diagnosis.model import decided_reason

        lines.append(f"Decided by:   learned model, {decided_reason(d.model)}")
    if d.matched_patterns:
        lines.append("Evidence:")
        lines.extend(
            f"  line {m.line_number:<6} {m.pattern_id:<16} {_clip(m.evidence)}"
            for m in d.matched_patterns[:8]
        )
    else:
        lines.append(f"Decisive line: {d.template or '(none)'}")
    for title, items in (("Corroborated by", d.corroboration), ("Contradicted by", d.contradictions)):
        if items:
            lines.append(f"{title}:")
            lines.extend(f"  - {item}" for item in items)
    if d.llm is not None:
        lines.append(d.llm.describe())
        if d.llm_reasoning:
            lines.append(f"  Reasoning ({d.llm.label}): {d.llm_reasoning}")
    lines += _listed("Recommended actions:", "  - ", d.recommended_actions, limits.actions, "action")
    lines += _listed(
        "Commands to check it yourself (never run by this tool):",
        "  $ ",
        d.diagnostic_commands,
        limits.commands,
        "command",
    )
    return "\n".join(lines) + "\n"


def _listed(title: str, bullet: str, items: list[str], limit: int | None, noun: str) -> list[str]:
    """``title`` and the first ``limit`` items, then how many are not shown."""
    kept = shown(items, limit)
    lines = [title, *(bullet + item for item in kept)] if kept else []
    note = more_note(len(items) - len(kept), noun)
    return [*lines, f"  ({note})"] if note else lines


def _clip(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
