"""Plans rendered as Markdown and JSON, for every root cause."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from qubinode_recovery_provider.models import Diagnosis, RecoveryPlan, RootCause
from qubinode_recovery_provider.recovery import (
    RecoveryPlanner,
    TaskConfig,
    plan_to_dict,
    plan_to_json,
    plan_to_markdown,
)

MakeDiagnosis = Callable[..., Diagnosis]


def make_plan(diagnosis: Diagnosis, task: TaskConfig | None = None) -> RecoveryPlan:
    return RecoveryPlanner(events=None, min_auto_confidence=0.7).plan_recovery(diagnosis, task)


@pytest.mark.parametrize("cause", list(RootCause))
def test_markdown_has_summary_table_and_every_option(
    cause: RootCause, diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    d = diagnosis(cause)
    plan = make_plan(d, task)
    text = plan_to_markdown(plan, diagnosis=d)

    assert text.startswith(f"## Recovery plan: {cause.value.replace('_', ' ')} failure\n")
    assert f"- Fingerprint: `fp-{cause.value}`" in text
    assert "- Failed: DAG `build_vm`, task `create_vm`, run `manual__2025-01-01T00:00:00+00:00`" in text
    assert f"- Diagnosis: {cause.value}, confidence " in text
    best = plan.recommended
    assert best is not None
    assert f"**Recommended:** 1. {best.title} ({best.type.value}, confidence {best.confidence:.2f}" in text
    assert f"> {best.reason}" in text
    assert "| # | Option | Type | Confidence | Risk | Expected | Runs |" in text
    rows = [line for line in text.splitlines() if re.match(r"^\| \d+ \|", line)]
    assert len(rows) == len(plan.options)
    for option in plan.options:
        assert f"### {option.priority}. {option.title}" in text
    assert "**Steps**" in text
    assert "**Success criteria**" in text
    assert text.endswith("\n")


def test_markdown_shows_the_action_and_its_arguments(diagnosis: MakeDiagnosis, task: TaskConfig) -> None:
    text = plan_to_markdown(make_plan(diagnosis(RootCause.NETWORK), task))

    assert "automatic: `retry-from-failure`" in text
    assert "Action `retry-from-failure` with arguments:" in text
    block = text.split("Action `retry-from-failure` with arguments:\n\n```json\n", 1)[1].split("\n```", 1)[0]
    assert json.loads(block)["task_ids"] == ["create_vm"]


def test_markdown_levels_and_cells_are_safe(diagnosis: MakeDiagnosis) -> None:
    plan = make_plan(diagnosis(RootCause.NETWORK))
    plan.options[0].title = "a | b"
    plan.fingerprint = "fp`x"
    text = plan_to_markdown(plan, level=1)

    assert text.startswith("# Recovery plan:")
    assert "| a \\| b |" in text
    assert "``fp`x``" in text


def test_json_round_trips_and_names_the_recommended_option(
    diagnosis: MakeDiagnosis, task: TaskConfig
) -> None:
    plan = make_plan(diagnosis(RootCause.TIMEOUT), task)
    data = json.loads(plan_to_json(plan))

    assert data["root_cause"] == "timeout"
    assert data["recommended"] == data["options"][0]
    assert data["options"][0]["type"] == "retry"
    assert data["options"][0]["risk"] == "low"
    again = RecoveryPlan.model_validate(data)
    assert again == plan
    assert plan_to_dict(plan) == data
    assert "\n" not in plan_to_json(plan, indent=None)


def test_a_plan_without_options_renders(diagnosis: MakeDiagnosis) -> None:
    plan = RecoveryPlan(fingerprint="fp", root_cause=RootCause.UNKNOWN)
    assert "**No option could be planned.**" in plan_to_markdown(plan)
    assert json.loads(plan_to_json(plan))["recommended"] is None
