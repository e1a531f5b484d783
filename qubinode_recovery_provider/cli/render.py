"""Human-readable reports for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import Diagnosis

_DECIDED_BY_MODEL = {
    True: "learned model, no pattern matched",
    False: "learned model, the patterns were not confident",
}
_RETRY_TEXT = {True: "yes", False: "no", None: "not known (leave it to the task's own retries)"}


def render_diagnosis(d: Diagnosis) -> str:
    """A short report: verdict, evidence, what to do."""
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
        lines.append(f"Decided by:   {_DECIDED_BY_MODEL[d.model.pattern_root_cause.value == 'unknown']}")
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
    if d.recommended_actions:
        lines.append("Recommended actions:")
        lines.extend(f"  - {action}" for action in d.recommended_actions)
    if d.diagnostic_commands:
        lines.append("Commands to check it yourself (never run by this tool):")
        lines.extend(f"  $ {cmd}" for cmd in d.diagnostic_commands)
    return "\n".join(lines) + "\n"


def _clip(text: str, width: int = 100) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
