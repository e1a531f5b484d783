"""The recovery planner: from a :class:`~qubinode_recovery_provider.models.Diagnosis` to a ranked
:class:`~qubinode_recovery_provider.models.RecoveryPlan`.

Every plan offers RETRY, MANUAL_FIX, SKIP and ESCALATE; WAIT when a known service or resource is to blame;
ROLLBACK when a handler or a checkpoint exists for the task. The options are ranked by the cause's
playbook (``playbooks.py``), then options meant to run unattended whose confidence (after outcome
learning) is below ``min_auto_confidence`` are demoted behind the options a person carries out. The
recommended option is the first one and its ``reason`` says why it won and why the preferred ones did
not.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.models import (
    Diagnosis,
    RecoveryActionType,
    RecoveryOption,
    RecoveryPlan,
    Risk,
    RootCause,
    Severity,
    TaskConfig,
)
from qubinode_recovery_provider.recovery import playbooks
from qubinode_recovery_provider.recovery.actions import (
    RESTART_SERVICE,
    RETRY_FROM_FAILURE,
    RUN_HANDLER,
    WAIT_FOR_SERVICE,
    ActionRegistry,
)
from qubinode_recovery_provider.recovery.events import RECOVERY_PLAN_CREATED, EventBus, default_bus
from qubinode_recovery_provider.recovery.learning import (
    PRIOR_STRENGTH,
    LearnedConfidence,
    OutcomeStats,
    learn,
)
from qubinode_recovery_provider.recovery.playbooks import Playbook, RetryMode
from qubinode_recovery_provider.recovery.safety import (
    is_airflow_key,
    is_airflow_run_id,
    is_safe_text,
    is_service_name,
    unit_stem,
)

if TYPE_CHECKING:
    from qubinode_recovery_provider.recovery.handlers import (
        CheckpointSource,
        HandlerRegistry,
        RegisteredHandler,
    )

A = RecoveryActionType
DEFAULT_ACTIONS = frozenset({RETRY_FROM_FAILURE, WAIT_FOR_SERVICE, RUN_HANDLER})
MAX_RETRY_DELAY_SECONDS = 1800
#: The backoff doubles per try at most this many times (2**64 s is past any cap; the exponent of a
#: try number like 10**20 must never be computed).
MAX_BACKOFF_DOUBLINGS = 64
MAX_TIMEOUT_SECONDS = 6 * 3600
WAIT_TIMEOUT_SECONDS = 300
REPEAT_PENALTY = 0.85
MAX_MANUAL_STEPS = 14
_PATTERN_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")

_ABSENT = {
    A.WAIT: "no known service or resource to wait for was identified",
    A.ROLLBACK: "no rollback handler or checkpoint is registered for this task",
}


@dataclass
class _Context:
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
class _Candidate:
    option: RecoveryOption
    intended_auto: bool = False
    note: str = ""
    learned: LearnedConfidence | None = None
    demoted: bool = False
    notes: list[str] = field(default_factory=list)


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

    def plan_recovery(self, diagnosis: Diagnosis, task: TaskConfig | None = None) -> RecoveryPlan:
        """Plan the recovery of the failure ``diagnosis`` describes.

        :param diagnosis: the analyzer's verdict
        :param task: the failed task's configuration; ids default to the diagnosis's
        """
        ctx = self._context(diagnosis, _merge_task(diagnosis, task))
        candidates = [self._learn(ctx, c) for c in _build_candidates(ctx)]
        ranked = _rank(candidates, ctx)
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

    def _context(self, diagnosis: Diagnosis, task: TaskConfig) -> _Context:
        playbook = playbooks.playbook_for(diagnosis.root_cause)
        retryable = diagnosis.retryable if diagnosis.retryable is not None else playbook.retryable_by_default
        tools = _tools(diagnosis)
        handler = (
            self._handlers.find(task.dag_id, task.task_id, diagnosis.root_cause) if self._handlers else None
        )
        return _Context(
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

    def _learn(self, ctx: _Context, candidate: _Candidate) -> _Candidate:
        option = candidate.option
        if option.action is None or self._stats is None:
            return candidate
        learned = learn(
            self._stats, ctx.diagnosis.fingerprint, option.action, option.confidence, self._strength
        )
        if learned.observations == 0:
            return candidate
        candidate.learned = learned
        candidate.option = option.model_copy(update={"confidence": round(learned.value, 4)})
        candidate.notes.append(learned.describe())
        return candidate


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
        if _PATTERN_ID_RE.match(match.pattern_id):
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


def _build_candidates(ctx: _Context) -> list[_Candidate]:
    builders: list[Callable[[_Context], list[_Candidate]]] = [
        _retry_candidates,
        _wait_candidates,
        _manual_fix_candidates,
        _rollback_candidates,
        _skip_candidates,
        _escalate_candidates,
    ]
    return [candidate for build in builders for candidate in build(ctx)]


def _option(ctx: _Context, **fields: Any) -> RecoveryOption:
    fields.setdefault("priority", 0)
    fields["confidence"] = round(min(max(fields["confidence"], 0.0), 1.0), 4)
    return RecoveryOption(**fields)


# --- RETRY -----------------------------------------------------------------------------------------


def _retry_candidates(ctx: _Context) -> list[_Candidate]:
    blind = ctx.playbook.blind_retry and ctx.retryable is not False
    if not blind or ctx.playbook.retry_mode is RetryMode.AFTER_FIX:
        return [_retry_after_fix(ctx)]
    return [_retry_now(ctx)]


def _retry_delay(ctx: _Context) -> int:
    base = ctx.diagnosis.retry_delay_seconds or ctx.playbook.retry_delay_seconds
    if not base and ctx.task.retry_delay_seconds:
        base = int(ctx.task.retry_delay_seconds)
    doublings = min(ctx.tries - 1, MAX_BACKOFF_DOUBLINGS)
    return int(min(base * 2**doublings, MAX_RETRY_DELAY_SECONDS))


def _longer_timeout(ctx: _Context) -> int | None:
    current = ctx.task.execution_timeout_seconds
    if current is None:
        return None
    longer = max(current * 2, current + 300)
    return int(min(longer, max(MAX_TIMEOUT_SECONDS, current)))


def _retry_now(ctx: _Context) -> _Candidate:
    delay = _retry_delay(ctx)
    timeout = _longer_timeout(ctx) if ctx.playbook.retry_mode is RetryMode.LONGER_TIMEOUT else None
    penalty = REPEAT_PENALTY ** min(ctx.tries - 1, MAX_BACKOFF_DOUBLINGS)  # 0.85**64 rounds to 0.0
    confidence = ctx.playbook.retry_confidence * ctx.scale * penalty
    target = ctx.retry_target()
    args = {**target, "delay_seconds": delay, "execution_timeout_seconds": timeout} if target else {}
    action = RETRY_FROM_FAILURE if target and RETRY_FROM_FAILURE in ctx.actions else None
    steps = [
        f"Wait {delay}s, then clear {ctx.label()}{_in_run(ctx)} with its downstream tasks "
        "(Airflow UI: Clear > Only failed; REST API: clearTaskInstances)."
    ]
    steps += _timeout_steps(ctx, timeout)
    steps.append("Finished upstream tasks are kept: the run resumes from the failed task.")
    note = f"retries {ctx.label()} after {delay}s"
    if ctx.playbook.retry_mode is RetryMode.LONGER_TIMEOUT:
        note += f" with a longer timeout ({timeout}s)" if timeout else " with a longer timeout"
    option = _option(
        ctx,
        type=A.RETRY,
        title=_retry_title(ctx, delay, timeout),
        confidence=confidence,
        risk=Risk.LOW,
        expected_duration_seconds=delay + int(timeout or 600),
        automatic=action is not None,
        action=action,
        action_args=args if action else {},
        steps=steps,
        prerequisites=_retry_prerequisites(ctx),
        rollback_steps=[
            "If the retry leaves partial resources behind, run the rollback option or "
            "remove them, then mark the task failed."
        ],
        success_criteria=_retry_success(ctx),
    )
    return _Candidate(option, intended_auto=True, note=note)


def _retry_title(ctx: _Context, delay: int, timeout: int | None) -> str:
    if ctx.playbook.retry_mode is RetryMode.LONGER_TIMEOUT:
        longer = f"{timeout}s" if timeout else "a longer timeout (about twice the current one)"
        return f"Retry from the failed task with execution_timeout {longer}"
    return f"Retry from the failed task after {delay}s"


def _timeout_steps(ctx: _Context, timeout: int | None) -> list[str]:
    if ctx.playbook.retry_mode is not RetryMode.LONGER_TIMEOUT:
        return []
    current = ctx.task.execution_timeout_seconds
    if timeout is None:
        return ["Give the task a longer execution_timeout for this try (about twice the current one)."]
    return [f"Give the task execution_timeout={timeout}s for this try (it was {int(current or 0)}s)."]


def _retry_after_fix(ctx: _Context) -> _Candidate:
    target = ctx.retry_target()
    action = RETRY_FROM_FAILURE if target and RETRY_FROM_FAILURE in ctx.actions else None
    option = _option(
        ctx,
        type=A.RETRY,
        title="Retry from the failed task once the cause is fixed",
        confidence=ctx.playbook.retry_confidence * ctx.scale,
        risk=Risk.LOW,
        expected_duration_seconds=600,
        automatic=False,
        action=action,
        action_args=target if action and target else {},
        steps=[
            f"After the manual fix, clear {ctx.label()}{_in_run(ctx)} with its downstream tasks.",
            "Finished upstream tasks are kept: the run resumes from the failed task.",
        ],
        prerequisites=[
            "The cause is fixed (see the manual fix option): an unchanged retry fails the same way.",
            *_retry_prerequisites(ctx),
        ],
        rollback_steps=["Mark the task failed again if the retry does not succeed, and escalate."],
        success_criteria=_retry_success(ctx),
    )
    return _Candidate(
        option,
        intended_auto=False,
        note="retries only after a person fixed the cause (no blind retry for this cause)",
    )


def _in_run(ctx: _Context) -> str:
    return f" in run `{ctx.run}`" if ctx.run else ""


def _retry_prerequisites(ctx: _Context) -> list[str]:
    where = f" of DAG `{ctx.dag}`" if ctx.dag else ""
    return [f"The run{where} still exists and its upstream tasks finished successfully."]


def _retry_success(ctx: _Context) -> list[str]:
    subject = ctx.label() if ctx.task_id else "The failed task"
    return [
        f"{subject} reaches state success{_in_run(ctx)}.",
        f"No new failure with fingerprint {ctx.diagnosis.fingerprint} is recorded.",
    ]


# --- WAIT ------------------------------------------------------------------------------------------


def _wait_candidates(ctx: _Context) -> list[_Candidate]:
    service = ctx.wait_target
    if service is None:
        return []
    candidates = [_wait(ctx, service)]
    if _restartable(ctx, service):
        candidates.append(_restart(ctx, service))
    return candidates


def _then_retry(ctx: _Context) -> dict[str, Any] | None:
    target = ctx.retry_target()
    if target is None or RETRY_FROM_FAILURE not in ctx.actions:
        return None
    return target


def _wait(ctx: _Context, service: str) -> _Candidate:
    known = unit_stem(service) in ctx.known_services
    then_retry = _then_retry(ctx)
    action = WAIT_FOR_SERVICE if known and WAIT_FOR_SERVICE in ctx.actions and then_retry else None
    auto = bool(ctx.retryable)
    args = {
        "service": service,
        "timeout_seconds": WAIT_TIMEOUT_SECONDS,
        "poll_seconds": 10.0,
        "then_retry": then_retry,
    }
    option = _option(
        ctx,
        type=A.WAIT,
        title=f"Wait for {service} to be healthy, then retry",
        confidence=ctx.playbook.wait_confidence * ctx.scale,
        risk=Risk.NONE if auto else Risk.LOW,
        expected_duration_seconds=WAIT_TIMEOUT_SECONDS // 2 + 600,
        automatic=action is not None and auto,
        action=action,
        action_args=args if action else {},
        steps=_wait_steps(ctx, service),
        prerequisites=[
            f"{service} is installed and enabled on the host; it is expected to come back "
            "by itself (restarting, flapping or briefly overloaded)."
            if auto
            else f"A person has started or repaired {service}."
        ],
        rollback_steps=["Nothing to undo: waiting changes nothing."],
        success_criteria=[f"{service} reports healthy within {WAIT_TIMEOUT_SECONDS}s.", *_retry_success(ctx)],
    )
    note = f"waits up to {WAIT_TIMEOUT_SECONDS}s for {service} to be healthy, then resumes the run"
    return _Candidate(option, intended_auto=auto, note=note)


def _wait_steps(ctx: _Context, service: str) -> list[str]:
    if service in playbooks.RESOURCES:
        check = {"memory": "free -h", "cpu": "uptime", "disk": "df -h"}[service]
        first = f"Watch {service} until the pressure is gone: `{check}`."
    else:
        first = (
            f"Probe {service} every 10s for up to {WAIT_TIMEOUT_SECONDS}s: `systemctl is-active {service}`."
        )
    return [first, f"When it is healthy, clear {ctx.label()}{_in_run(ctx)} with its downstream tasks."]


def _restartable(ctx: _Context, service: str) -> bool:
    return RESTART_SERVICE in ctx.actions and unit_stem(service) in ctx.units


def _restart(ctx: _Context, unit: str) -> _Candidate:
    then_retry = _then_retry(ctx)
    args = {"unit": unit, "timeout_seconds": 90, "wait_healthy_seconds": 120, "then_retry": then_retry}
    option = _option(
        ctx,
        type=A.WAIT,
        title=f"Restart {unit}, wait until it is healthy, then retry",
        confidence=ctx.playbook.wait_confidence * 0.9 * ctx.scale,
        risk=Risk.MEDIUM,
        expected_duration_seconds=900,
        automatic=bool(ctx.retryable) and then_retry is not None,
        action=RESTART_SERVICE if then_retry is not None else None,
        action_args=args if then_retry is not None else {},
        steps=[
            f"`sudo systemctl restart {unit}` (list arguments, 90s timeout).",
            f"Wait up to 120s for {unit} to be healthy.",
            f"Clear {ctx.label()}{_in_run(ctx)} with its downstream tasks.",
        ],
        prerequisites=[
            f"{unit} is one of the configured systemd_units and may be restarted on this host.",
            "Other workloads using it tolerate a short interruption.",
        ],
        rollback_steps=[
            f"If {unit} does not come back: `systemctl status {unit}`, "
            f"`journalctl -u {unit} --since -15min`, then escalate."
        ],
        success_criteria=[f"{unit} is active after the restart.", *_retry_success(ctx)],
    )
    return _Candidate(
        option,
        intended_auto=bool(ctx.retryable),
        note=f"restarts {unit} (interrupts its other users), then resumes the run",
    )


# --- MANUAL_FIX ------------------------------------------------------------------------------------


def _manual_fix_candidates(ctx: _Context) -> list[_Candidate]:
    pb = ctx.playbook
    option = _option(
        ctx,
        type=A.MANUAL_FIX,
        title=f"Fix the {ctx.diagnosis.root_cause.value.replace('_', ' ')} problem by hand",
        confidence=pb.manual_confidence * ctx.scale,
        risk=Risk.LOW,
        expected_duration_seconds=pb.manual_minutes * 60,
        steps=_manual_steps(ctx),
        prerequisites=[f"Shell access to {_host(ctx)} as a user allowed to change it."],
        rollback_steps=["Revert the change if the task still fails the same way, and escalate."],
        success_criteria=[
            "The check commands no longer show the problem.",
            f"A retry of {ctx.label()} succeeds.",
        ],
    )
    return [
        _Candidate(option, intended_auto=False, note="gives a person the checks and fixes for this cause")
    ]


def _host(ctx: _Context) -> str:
    host = ctx.task.host
    return f"`{host}`" if host and is_service_name(host) else "the host that ran the task"


def _manual_steps(ctx: _Context) -> list[str]:
    checks = [_fill(cmd, ctx) for cmd in ctx.playbook.diagnostics]
    for tool in ctx.tools:
        checks.extend(playbooks.TOOL_DIAGNOSTICS.get(tool, ()))
    checks.extend(cmd for cmd in ctx.diagnosis.diagnostic_commands if is_safe_text(cmd))
    fixes = list(ctx.playbook.fixes)
    fixes.extend(hint for hint in ctx.diagnosis.recommended_actions if is_safe_text(hint))
    steps = [f"Check: `{cmd}`" for cmd in _unique(checks)]
    steps += [f"Fix: {_fill(fix, ctx)}" for fix in _unique(fixes)]
    return steps[:MAX_MANUAL_STEPS]


def _fill(template: str, ctx: _Context) -> str:
    """Put the (validated) unit name into a ``<unit>`` slot."""
    service = ctx.wait_target
    if service and service not in playbooks.RESOURCES and is_service_name(service):
        return template.replace("<unit>", service)
    return template


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        seen.setdefault(item.strip(), None)
    return [item for item in seen if item]


# --- ROLLBACK --------------------------------------------------------------------------------------


def _rollback_candidates(ctx: _Context) -> list[_Candidate]:
    if ctx.handler is not None:
        return [_rollback_handler(ctx, ctx.handler)]
    if ctx.checkpoint is not None:
        return [_rollback_checkpoint(ctx, ctx.checkpoint)]
    return []


def _rollback_handler(ctx: _Context, handler: RegisteredHandler) -> _Candidate:
    args = {"handler": handler.name, "dag_id": handler.dag_id, "task_id": ctx.task_id, "run_id": ctx.run}
    action = RUN_HANDLER if RUN_HANDLER in ctx.actions else None
    steps = [
        f"Run the recovery handler `{handler.name}` registered for "
        f"`{handler.dag_id}.{handler.task_id or '*'}`"
        + (f": {handler.description}" if is_safe_text(handler.description) else ".")
    ]
    if ctx.checkpoint is not None:
        steps.append("The handler receives the latest checkpoint recorded for the task.")
    steps.append(f"Then clear {ctx.label()}{_in_run(ctx)} so it runs again from a clean state.")
    option = _option(
        ctx,
        type=A.ROLLBACK,
        title=f"Roll back with handler {handler.name}",
        confidence=0.8 * ctx.scale,
        risk=handler.risk,
        expected_duration_seconds=handler.expected_duration_seconds,
        automatic=action is not None,
        action=action,
        action_args=args if action else {},
        steps=steps,
        prerequisites=[f"Handler `{handler.name}` is registered in the process that executes the plan."],
        rollback_steps=[f"Re-run {ctx.label()} to recreate what the handler removed."],
        success_criteria=["The handler reports success.", "Nothing the failed task created is left behind."],
    )
    return _Candidate(option, intended_auto=True, note=f"undoes the failed task's work with `{handler.name}`")


def _rollback_checkpoint(ctx: _Context, checkpoint: dict[str, Any]) -> _Candidate:
    keys = _checkpoint_keys(checkpoint)
    option = _option(
        ctx,
        type=A.ROLLBACK,
        title="Restore the state of the latest checkpoint",
        confidence=0.5 * ctx.scale,
        risk=Risk.MEDIUM,
        expected_duration_seconds=1800,
        steps=[
            f"Read the latest checkpoint of {ctx.label()} (qubinode-recovery incidents show "
            f"{ctx.diagnosis.fingerprint}){keys}.",
            "Remove what the failed task created after that checkpoint and restore the recorded state.",
            f"Clear {ctx.label()}{_in_run(ctx)} to run it again.",
        ],
        prerequisites=["A checkpoint was recorded for the task before it failed."],
        rollback_steps=[f"Re-run {ctx.label()} to recreate what was removed."],
        success_criteria=["The resources match the checkpoint.", f"A retry of {ctx.label()} succeeds."],
    )
    return _Candidate(option, intended_auto=False, note="restores the state of the latest checkpoint")


def _checkpoint_keys(checkpoint: dict[str, Any]) -> str:
    state = checkpoint.get("state", checkpoint)
    keys = [key for key in state if is_airflow_key(key)] if isinstance(state, dict) else []
    return f"; recorded keys: {', '.join(sorted(keys)[:10])}" if keys else ""


# --- SKIP and ESCALATE -----------------------------------------------------------------------------


def _skip_candidates(ctx: _Context) -> list[_Candidate]:
    option = _option(
        ctx,
        type=A.SKIP,
        title="Skip the failed task",
        confidence=ctx.playbook.skip_confidence * ctx.scale,
        risk=Risk.MEDIUM,
        expected_duration_seconds=300,
        steps=[
            f"Mark {ctx.label()}{_in_run(ctx)} as success in the Airflow UI (Mark state > success).",
            "Note in the incident why it was skipped.",
        ],
        prerequisites=[
            "Downstream tasks do not need the task's result, or it exists already "
            "(for example the VM is already there and correct)."
        ],
        rollback_steps=[f"Clear {ctx.label()} to run it after all."],
        success_criteria=["Downstream tasks succeed without the skipped task."],
    )
    return [_Candidate(option, intended_auto=False, note="lets the rest of the run go on without this task")]


def _escalate_candidates(ctx: _Context) -> list[_Candidate]:
    diagnosis = ctx.diagnosis
    confidence = 0.5 + 0.4 * (1.0 - diagnosis.confidence)
    if diagnosis.root_cause is RootCause.UNKNOWN:
        confidence = max(confidence, 0.8)
    owner = f" of DAG `{ctx.dag}`" if ctx.dag else ""
    steps = [
        "Open an incident with this plan and the diagnosis (a GitHub issue when github_repository "
        "is set, a Markdown report otherwise).",
        f"Assign it to the owner{owner}.",
    ]
    if diagnosis.severity is Severity.CRITICAL:
        steps.append("Severity is critical: page the on-call person.")
    option = _option(
        ctx,
        type=A.ESCALATE,
        title="Escalate to a person",
        confidence=confidence,
        risk=Risk.NONE,
        expected_duration_seconds=3600,
        steps=steps,
        success_criteria=["An owner acknowledges the incident."],
    )
    return [_Candidate(option, intended_auto=False, note="hands the incident to a person with this plan")]


# --- ranking ---------------------------------------------------------------------------------------


def _rank(candidates: list[_Candidate], ctx: _Context) -> list[RecoveryOption]:
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


def _mark_demotion(candidate: _Candidate, ctx: _Context) -> None:
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


def _short_reason(candidate: _Candidate) -> str:
    return "; ".join([candidate.note, *candidate.notes])


def _recommended_reason(best: _Candidate, candidates: list[_Candidate], ctx: _Context) -> str:
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
    patterns = [m.pattern_id for m in ctx.diagnosis.matched_patterns if _PATTERN_ID_RE.match(m.pattern_id)]
    if patterns:
        parts.append(f"Matched patterns: {', '.join(patterns[:5])}.")
    return " ".join(parts)


def _passed_over(best: _Candidate, candidates: list[_Candidate], ctx: _Context) -> list[str]:
    """Sentences on each option type the playbook prefers over the recommended one."""
    order = ctx.playbook.order(ctx.retryable)
    preferred = order[: _order_index(order, best.option.type)]
    by_type: dict[RecoveryActionType, list[_Candidate]] = {}
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
