"""The recovery operators keep their dry-run switch apart from ``BaseOperator.dry_run()``."""

from __future__ import annotations

from typing import Any

import pytest

from qubinode_recovery_provider.operators import ExecuteRecoveryOperator, RecoveryDecisionOperator

BRANCHES = {"auto_task_id": "execute", "approval_task_id": "approval", "escalate_task_id": "escalate"}


@pytest.mark.parametrize(
    ("operator_class", "kwargs"),
    [(RecoveryDecisionOperator, BRANCHES), (ExecuteRecoveryOperator, {})],
    ids=["decide", "execute"],
)
def test_the_switch_is_templated_and_the_operators_dry_run_still_works(
    operator_class: type[Any], kwargs: dict[str, str]
) -> None:
    operator = operator_class(task_id="step", dry_run="{{ params.dry_run }}", **kwargs)
    assert operator.dry_run_switch == "{{ params.dry_run }}"
    assert "dry_run_switch" in operator.template_fields
    assert "dry_run" not in operator.template_fields
    # BaseOperator.dry_run() logs the template fields; an attribute ``dry_run`` made it "not callable"
    assert operator.dry_run() is None
