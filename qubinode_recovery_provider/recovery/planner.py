"""The recovery planner: from a :class:`~qubinode_recovery_provider.models.Diagnosis` to a ranked
:class:`~qubinode_recovery_provider.models.RecoveryPlan`.

Every plan offers RETRY, MANUAL_FIX, SKIP and ESCALATE; WAIT when a known service or resource is to blame;
ROLLBACK when a handler or a checkpoint exists for the task (the builders: ``recovery/options/``). The
options are ranked by the cause's playbook (``playbooks.py``), then options meant to run unattended whose
confidence (after outcome learning) is below ``min_auto_confidence`` are demoted behind the options a
person carries out (``ranking.py``). The recommended option is the first one and its ``reason`` says why
it won and why the preferred ones did not.

:class:`RecoveryPlanner` holds the configuration and builds each plan's :class:`PlanContext`.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.models import (
    AttemptOutcome,
    Diagnosis,
    RecoveryActionType,
    RecoveryOption,
    RecoveryPlan,
    RootCause,
    TaskConfig,
)
from qubinode_recovery_provider.recovery import playbooks
from qubinode_recovery_provider.recovery.actions import (
    RETRY_FROM_FAILURE,
    RUN_HANDLER,
    WAIT_FOR_SERVICE,
    ActionRegistry,
)
from qubinode_recovery_provider.recovery.events import RECOVERY_PLAN_CREATED, EventBus, default_bus
from qubinode_recovery_provider.recovery.learning import PRIOR_STRENGTH, OutcomeStats
from qubinode_recovery_provider.recovery.options import PlanContext, build_candidates
from qubinode_recovery_provider.recovery.options.base import PATTERN_ID_RE
from qubinode_recovery_provider.recovery.policy import ESCALATE_ACTION
from qubinode_recovery_provider.recovery.ranking import learn_confidence, rank
from qubinode_recovery_provider.recovery.safety import is_airflow_key, is_service_name, unit_stem

if TYPE_CHECKING:
    from qubinode_recovery_provider.recovery.handlers import CheckpointSource, HandlerRegistry
    from qubinode_recovery_provider.recovery.playbooks import Playbook

DEFAULT_ACTIONS = frozenset({RETRY_FROM_FAILURE, WAIT_FOR_SERVICE, RUN_HANDLER})

log = logging.getLogger(__name__)


class RecoveryPlanner:
    """Build ranked recovery plans.

    :param ledger: the ledger; used for outcome learning and checkpoints unless given separately
    :param stats: source of ``action_outcomes`` for outcome learning
    :param checkpoints: source of ``latest_checkpoint``
    :param handlers: registered recovery handlers (ROLLBACK options)
    :param actions: the action registry, or the names of the enabled actions; default: retry,
        wait and run-handler (restart-service only when enabled in a registry)
    :param min_auto_confidence: below this an option is not run unattended (default: config)
    :param known_services: services and containers a WAIT may probe (default: config)
    :param restartable_units: systemd units a restart may be offered for (default: config
        ``systemd_units``)
    :param events: bus for ``recovery_plan_created`` (default: the process bus; None to disable)
    :param prior_strength: weight of the base confidence against recorded outcomes (learning.py)
    :param github_token: with a repository, the escalations :meth:`execute_recovery` makes are filed as
        GitHub issues with this token (the reference guide's constructor); None: no GitHub
    :param github_repo: ``owner/name``; default the ``GITHUB_REPOSITORY`` environment variable when a
        token is given
    :param github_api_url: the REST API root (GitHub Enterprise); default ``GITHUB_API_URL`` or
        ``https://api.github.com``
    :raises ValueError: when ``github_repo`` (or ``GITHUB_REPOSITORY``) is not ``owner/name``
    """

    def __init__(
        self,
        *,
        ledger: Any | None = None,
        stats: OutcomeStats | None = None,
        checkpoints: CheckpointSource | None = None,
        handlers: HandlerRegistry | None = None,
        actions: ActionRegistry | Collection[str] | None = None,
        min_auto_confidence: float | None = None,
        known_services: Iterable[str] | None = None,
        restartable_units: Iterable[str] | None = None,
        events: EventBus | bool | None = True,
        prior_strength: float = PRIOR_STRENGTH,
        github_token: str | None = None,
        github_repo: str | None = None,
        github_api_url: str | None = None,
    ) -> None:
        self._stats = stats if stats is not None else ledger
        self._checkpoints = checkpoints if checkpoints is not None else ledger
        self._handlers = handlers
        self._actions = actions
        self._min_auto = min_auto_confidence
        self._known = _known_services(known_services)
        self._units = frozenset(
            unit_stem(unit)
            for unit in (restartable_units if restartable_units is not None else _configured_units())
        )
        self._events = default_bus() if events is True else (events or None)
        self._strength = prior_strength
        self._github = GitHubSettings.of(github_token, github_repo, github_api_url)

    def plan_recovery(self, diagnosis: Diagnosis, task: TaskConfig | None = None) -> RecoveryPlan:
        """Plan the recovery of the failure ``diagnosis`` describes.

        :param diagnosis: the analyzer's verdict
        :param task: the failed task's configuration; ids default to the diagnosis's
        """
        ctx = self._context(diagnosis, _merge_task(diagnosis, task))
        candidates = build_candidates(ctx)
        if self._stats is not None:
            candidates = [learn_confidence(c, ctx, self._stats, self._strength) for c in candidates]
        ranked = rank(candidates, ctx)
        plan = RecoveryPlan(
            id=uuid.uuid4().hex,
            fingerprint=diagnosis.fingerprint,
            root_cause=diagnosis.root_cause,
            options=ranked,
            recommended_index=0 if ranked else None,
            dag_id=ctx.task.dag_id,
            task_id=ctx.task.task_id,
            run_id=ctx.task.run_id,
        )
        if isinstance(self._events, EventBus):
            self._events.emit(RECOVERY_PLAN_CREATED, plan=plan, diagnosis=diagnosis)
        return plan

    def execute_recovery(
        self, plan: RecoveryPlan, option: RecoveryOption | int | None = None, **settings: Any
    ) -> bool:
        """The reference guide's call: carry out ``option`` of ``plan`` (default the recommended one)
        exactly once through :func:`qubinode_recovery_provider.api.execute_recovery`; True when it
        succeeded. An option a person carries out (MANUAL_FIX, ESCALATE, SKIP) is escalated; with GitHub
        set up (``github_token``), the escalation is delivered to the fingerprint's issue now, and an
        ESCALATE option succeeded when it got there (without GitHub: when it was queued).

        :param plan: the plan
        :param option: one of the plan's options, or its index
        :param settings: more :class:`~qubinode_recovery_provider.recovery.executor.CallSettings`
        """
        from qubinode_recovery_provider import api

        index = option_index(plan, option)
        if index is not None:
            settings["option_index"] = index
        attempt = api.execute_recovery(plan, **settings)
        if attempt.action != ESCALATE_ACTION:
            return attempt.outcome is AttemptOutcome.SUCCEEDED
        delivered = self._github.deliver(plan.fingerprint) if self._github else True
        chosen = plan.options[index] if index is not None else plan.recommended
        return delivered and chosen is not None and chosen.type is RecoveryActionType.ESCALATE

    def _context(self, diagnosis: Diagnosis, task: TaskConfig) -> PlanContext:
        playbook = playbooks.playbook_for(diagnosis.root_cause)
        retryable = diagnosis.retryable if diagnosis.retryable is not None else playbook.retryable_by_default
        tools = _tools(diagnosis)
        handler = (
            self._handlers.find(task.dag_id, task.task_id, diagnosis.root_cause) if self._handlers else None
        )
        return PlanContext(
            diagnosis=diagnosis,
            task=task,
            playbook=playbook,
            retryable=retryable,
            scale=0.5 + 0.5 * diagnosis.confidence,
            min_auto=self._min_auto_confidence(),
            actions=self._enabled_actions(),
            known_services=self._known,
            units=self._units,
            tools=tools,
            wait_target=_wait_target(diagnosis, playbook, retryable, tools, self._known),
            handler=handler,
            checkpoint=self._checkpoint(task),
        )

    def _min_auto_confidence(self) -> float:
        if self._min_auto is not None:
            return self._min_auto
        from qubinode_recovery_provider import config

        return config.get_float("min_auto_confidence")

    def _enabled_actions(self) -> frozenset[str]:
        if self._actions is None:
            return DEFAULT_ACTIONS
        if isinstance(self._actions, ActionRegistry):
            return self._actions.enabled_names()
        return frozenset(self._actions)

    def _checkpoint(self, task: TaskConfig) -> dict[str, Any] | None:
        dag_id, task_id = task.dag_id, task.task_id
        if self._checkpoints is None or not (
            dag_id and task_id and is_airflow_key(dag_id) and is_airflow_key(task_id)
        ):
            return None
        try:
            found = self._checkpoints.latest_checkpoint(dag_id, task_id, task.run_id)
        except Exception:
            return None
        return found if isinstance(found, dict) else None


def _known_services(names: Iterable[str] | None) -> dict[str, str]:
    """Map each allowlisted name's stem to its full name (``libvirtd`` -> ``libvirtd.service``)."""
    if names is None:
        names = _configured_services()
    known: dict[str, str] = {}
    for name in names:
        if is_service_name(name):
            known.setdefault(unit_stem(name), name)
    known.update({name: name for name in playbooks.RESOURCES})
    return known


def _configured_units() -> list[str]:
    from qubinode_recovery_provider import config

    return config.get_list("systemd_units")


def _configured_services() -> list[str]:
    from qubinode_recovery_provider import config

    names = _configured_units() + config.get_list("podman_containers")
    try:
        dependency_map = config.get_json("dependency_map") or {}
    except config.ConfigError:
        dependency_map = {}
    if isinstance(dependency_map, dict):
        names.extend(str(key) for key in dependency_map)
    return names


def _merge_task(diagnosis: Diagnosis, task: TaskConfig | None) -> TaskConfig:
    task = task or TaskConfig()
    return task.model_copy(
        update={
            "dag_id": task.dag_id or diagnosis.dag_id,
            "task_id": task.task_id or diagnosis.task_id,
            "run_id": task.run_id or diagnosis.run_id,
        }
    )


def _tools(diagnosis: Diagnosis) -> list[str]:
    tools: list[str] = []
    for match in diagnosis.matched_patterns:
        if PATTERN_ID_RE.match(match.pattern_id):
            tool = playbooks.tool_of(match.pattern_id)
            if tool not in tools:
                tools.append(tool)
    return tools


def _wait_target(
    diagnosis: Diagnosis,
    playbook: Playbook,
    retryable: bool | None,
    tools: list[str],
    known: dict[str, str],
) -> str | None:
    """The service (or resource) a WAIT option waits for, or None.

    For a service dependency: the first affected service that is a configured unit or container, else
    the service of a blamed tool (``libvirt`` -> ``libvirtd.service``). Names that are neither (``kcli``,
    ``kernel``) are never waited for.
    """
    if diagnosis.root_cause is RootCause.SERVICE_DEPENDENCY:
        names = [name for name in diagnosis.affected_services if is_service_name(name)]
        for name in names:
            if unit_stem(name) in known and name not in playbooks.RESOURCES:
                return known[unit_stem(name)]
        for name in [*names, *tools]:
            if name in playbooks.TOOL_SERVICES:
                return playbooks.TOOL_SERVICES[name]
        return None
    if playbook.wait_for_resource and retryable:
        return playbook.wait_for_resource
    return None


def option_index(plan: RecoveryPlan, option: RecoveryOption | int | None) -> int | None:
    """The index of ``option`` among the plan's options (None for the recommended one).

    :raises ValueError: when it is not one of them
    """
    if option is None:
        return None
    if isinstance(option, int) and not isinstance(option, bool):
        if not 0 <= option < len(plan.options):
            raise ValueError(f"the plan has no option {option} (it has {len(plan.options)})")
        return option
    for index, candidate in enumerate(plan.options):
        if candidate is option:
            return index
    for index, candidate in enumerate(plan.options):
        if candidate == option:
            return index
    raise ValueError("the option is not one of the plan's options")


@dataclass(frozen=True)
class GitHubSettings:
    """Where :meth:`RecoveryPlanner.execute_recovery` delivers escalations (the guide's constructor)."""

    token: str
    repository: str
    api_url: str | None

    @classmethod
    def of(cls, token: str | None, repository: str | None, api_url: str | None) -> GitHubSettings | None:
        """The settings, or None (no GitHub) without a token or a repository.

        :raises ValueError: for a repository that is not ``owner/name`` (before any recovery runs)
        """
        from qubinode_recovery_provider.escalation.github import repository_name

        token = (token or "").strip()
        repository = (repository or os.environ.get("GITHUB_REPOSITORY", "") if token else "").strip()
        if token and not repository:  # never a silent no-op: the caller meant GitHub
            log.warning("github_token given without github_repo or GITHUB_REPOSITORY: no GitHub issues")
        if not (token and repository):
            return None
        return cls(token, repository_name(repository), api_url or os.environ.get("GITHUB_API_URL") or None)

    def __repr__(self) -> str:  # never print the token
        return f"GitHubSettings(repository={self.repository!r}, api_url={self.api_url!r})"

    def deliver(self, fingerprint: str) -> bool:
        """Deliver the fingerprint's queued escalations to its issue now; True when none is left."""
        from qubinode_recovery_provider import runtime
        from qubinode_recovery_provider.escalation.delivery import deliver_escalations
        from qubinode_recovery_provider.escalation.github import issues_from_env

        env = {
            "GITHUB_TOKEN": self.token,
            "GITHUB_REPOSITORY": self.repository,
            "GITHUB_API_URL": self.api_url or "",
        }
        sink = issues_from_env(env)  # the CLI's sink, with this planner's settings
        report = deliver_escalations(runtime.current().ledger, sink, fingerprint=fingerprint)
        return not report.errors and not report.deferred
