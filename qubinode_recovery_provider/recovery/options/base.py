"""What every option builder works from: the :class:`PlanContext` of one plan, the :class:`Candidate`
an option is while it is ranked, and the phrases several options share."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.models import Diagnosis, RecoveryActionType, RecoveryOption, TaskConfig
from qubinode_recovery_provider.recovery.safety import is_airflow_key, is_airflow_run_id

if TYPE_CHECKING:
    from qubinode_recovery_provider.recovery.handlers import RegisteredHandler
    from qubinode_recovery_provider.recovery.learning import LearnedConfidence
    from qubinode_recovery_provider.recovery.playbooks import Playbook

A = RecoveryActionType
#: What a pattern id looks like (ids that do not are never echoed into a plan).
PATTERN_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass
class PlanContext:
    """Everything the option builders need, computed once per plan."""

    diagnosis: Diagnosis
    task: TaskConfig
    playbook: Playbook
    retryable: bool | None
    scale: float
    min_auto: float
    actions: frozenset[str]
    known_services: dict[str, str]
    units: frozenset[str]
    tools: list[str]
    wait_target: str | None
    handler: RegisteredHandler | None
    checkpoint: dict[str, Any] | None

    @property
    def dag(self) -> str | None:
        return self.task.dag_id if is_airflow_key(self.task.dag_id) else None

    @property
    def task_id(self) -> str | None:
        return self.task.task_id if is_airflow_key(self.task.task_id) else None

    @property
    def run(self) -> str | None:
        return self.task.run_id if is_airflow_run_id(self.task.run_id) else None

    @property
    def tries(self) -> int:
        return max(self.task.try_number or 1, 1)

    def retry_target(self) -> dict[str, Any] | None:
        """``retry-from-failure`` arguments naming the failed task, when all ids are known."""
        if not (self.dag and self.task_id and self.run):
            return None
        return {"dag_id": self.dag, "run_id": self.run, "task_ids": [self.task_id]}

    def label(self) -> str:
        return f"`{self.task_id}`" if self.task_id else "the failed task"


@dataclass
class Candidate:
    """One option while the plan is ranked: whether it is meant to run unattended, what it does (for the
    reasons), what outcome learning made of it and whether it was demoted."""

    option: RecoveryOption
    intended_auto: bool = False
    note: str = ""
    learned: LearnedConfidence | None = None
    demoted: bool = False
    notes: list[str] = field(default_factory=list)


def make_option(ctx: PlanContext, **fields: Any) -> RecoveryOption:
    fields.setdefault("priority", 0)
    fields["confidence"] = round(min(max(fields["confidence"], 0.0), 1.0), 4)
    return RecoveryOption(**fields)


def in_run(ctx: PlanContext) -> str:
    return f" in run `{ctx.run}`" if ctx.run else ""


def retry_success(ctx: PlanContext) -> list[str]:
    subject = ctx.label() if ctx.task_id else "The failed task"
    return [
        f"{subject} reaches state success{in_run(ctx)}.",
        f"No new failure with fingerprint {ctx.diagnosis.fingerprint} is recorded.",
    ]
