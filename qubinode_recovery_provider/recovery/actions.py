"""The registry of automatic recovery actions: named, allowlisted callables with typed arguments.

An option of a plan can only run automatically when its ``action`` names an *enabled* entry of an
:class:`ActionRegistry` and its ``action_args`` validate against that entry's pydantic model. Nothing
else is ever executed. The built-in actions:

``retry-from-failure`` (:class:`RetryFromFailureArgs`)
    Clear the failed task instances of a run so the run resumes from them; the finished upstream tasks
    are the checkpoint. The implementation (Airflow REST API) is passed in by the caller; without one
    the action is registered but disabled.
``wait-for-service`` (:class:`WaitForServiceArgs`)
    Poll a health probe ``probe(name) -> Health`` until the service or resource is healthy or a
    deadline passes. Disabled without a probe.
``restart-service`` (:class:`RestartServiceArgs`)
    ``systemctl restart <unit>`` with a list of arguments, a timeout, and the unit checked against
    :data:`~qubinode_recovery_provider.recovery.safety.SERVICE_NAME_RE` and the configured
    ``systemd_units``. Disabled unless explicitly enabled.
``run-handler`` (:class:`RunHandlerArgs`)
    Run a recovery handler registered for the DAG or task
    (:class:`~qubinode_recovery_provider.recovery.handlers.HandlerRegistry`).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qubinode_recovery_provider.models import Health, Risk
from qubinode_recovery_provider.recovery.safety import (
    AIRFLOW_KEY_RE,
    AIRFLOW_RUN_ID_RE,
    REGISTERED_NAME_RE,
    SERVICE_NAME_RE,
    unit_stem,
)

if TYPE_CHECKING:
    from qubinode_recovery_provider.recovery.handlers import CheckpointSource, HandlerRegistry

RETRY_FROM_FAILURE = "retry-from-failure"
WAIT_FOR_SERVICE = "wait-for-service"
RESTART_SERVICE = "restart-service"
RUN_HANDLER = "run-handler"

Probe = Callable[[str], Health]


class ActionError(Exception):
    """An action cannot be used: unknown, disabled, or its arguments are invalid."""


class UnknownActionError(ActionError):
    """No action of that name is registered."""


class ActionDisabledError(ActionError):
    """The action is registered but not enabled."""


class InvalidActionArgsError(ActionError):
    """The arguments do not validate against the action's model."""


@dataclass(frozen=True)
class ActionResult:
    """What an action reports.

    :param succeeded: whether the action did what it is for
    :param detail: one line for the ledger and the UI
    :param changed: ``False`` when there was nothing left to do (someone else had handled the failure
        already, e.g. the failed task was re-run before an approval came): the attempt is *skipped*
    """

    succeeded: bool
    detail: str = ""
    changed: bool = True


class ActionArgs(BaseModel):
    """Base of every argument model: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryFromFailureArgs(ActionArgs):
    """Arguments of ``retry-from-failure``.

    :param dag_id: the DAG of the failed run
    :param run_id: the failed run
    :param task_ids: the failed tasks to clear
    :param include_downstream: also clear their downstream tasks so the run continues
    :param delay_seconds: wait this long before clearing
    :param execution_timeout_seconds: a longer timeout the retried task should get, when the cause
        was a timeout (applied by the Airflow adapter)
    """

    dag_id: str = Field(pattern=AIRFLOW_KEY_RE.pattern)
    run_id: str = Field(pattern=AIRFLOW_RUN_ID_RE.pattern)
    task_ids: list[str] = Field(min_length=1, max_length=100)
    include_downstream: bool = True
    delay_seconds: int = Field(default=0, ge=0, le=86400)
    execution_timeout_seconds: int | None = Field(default=None, ge=1, le=7 * 86400)

    @field_validator("task_ids")
    @classmethod
    def _check_task_ids(cls, value: list[str]) -> list[str]:
        bad = [task_id for task_id in value if not AIRFLOW_KEY_RE.match(task_id)]
        if bad:
            raise ValueError("task_ids must be Airflow task ids")
        return value


class WaitForServiceArgs(ActionArgs):
    """Arguments of ``wait-for-service``.

    :param service: systemd unit, container or resource name the probe understands
    :param timeout_seconds: give up after this long
    :param poll_seconds: time between probes
    :param then_retry: retry the failed task once the service is healthy
    """

    service: str = Field(pattern=SERVICE_NAME_RE.pattern)
    timeout_seconds: int = Field(default=300, ge=1, le=3600)
    poll_seconds: float = Field(default=10.0, ge=0.01, le=300)
    then_retry: RetryFromFailureArgs | None = None


class RestartServiceArgs(ActionArgs):
    """Arguments of ``restart-service``.

    :param unit: the systemd unit; must also be one of the configured ``systemd_units``
    :param timeout_seconds: timeout of ``systemctl restart``
    :param wait_healthy_seconds: afterwards, wait this long for the probe to report healthy
    :param then_retry: retry the failed task once the unit is healthy
    """

    unit: str = Field(pattern=SERVICE_NAME_RE.pattern)
    timeout_seconds: int = Field(default=90, ge=1, le=600)
    wait_healthy_seconds: int = Field(default=120, ge=0, le=1800)
    then_retry: RetryFromFailureArgs | None = None


class RunHandlerArgs(ActionArgs):
    """Arguments of ``run-handler``.

    :param handler: the name the handler was registered under
    :param dag_id: the DAG of the failed run
    :param task_id: the failed task
    :param run_id: the failed run
    """

    handler: str = Field(pattern=REGISTERED_NAME_RE.pattern)
    dag_id: str = Field(pattern=AIRFLOW_KEY_RE.pattern)
    task_id: str | None = Field(default=None, pattern=AIRFLOW_KEY_RE.pattern)
    run_id: str | None = Field(default=None, pattern=AIRFLOW_RUN_ID_RE.pattern)


ActionFn = Callable[[Any], "ActionResult | bool | None"]


@dataclass(frozen=True)
class ActionSpec:
    """One registered action.

    :param name: the allowlisted name plans refer to
    :param fn: called with the validated arguments model
    :param args_model: the pydantic model of the arguments
    :param risk: how much harm the action can do; above the approval threshold it needs a person
    :param enabled: disabled actions are listed but never run
    :param risk_for: the risk of one call, when it depends on the arguments (a handler's own risk)
    """

    name: str
    fn: ActionFn
    args_model: type[BaseModel]
    risk: Risk = Risk.LOW
    enabled: bool = True
    description: str = ""
    risk_for: Callable[[Any], Risk] | None = None

    def risk_of(self, args: BaseModel) -> Risk:
        """The risk of running this action with ``args`` (the registered risk if it cannot tell)."""
        if self.risk_for is None:
            return self.risk
        try:
            return Risk(self.risk_for(args))
        except Exception:
            return Risk.HIGH


class ActionRegistry:
    """Named, allowlisted actions with typed arguments."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._specs: dict[str, ActionSpec] = {}

    def register(
        self,
        name: str,
        fn: ActionFn,
        args_model: type[BaseModel],
        risk: Risk = Risk.LOW,
        *,
        enabled: bool = True,
        description: str = "",
        risk_for: Callable[[Any], Risk] | None = None,
    ) -> ActionSpec:
        """Add or replace an action.

        :param name: allowlisted name (letters, digits, ``-_.:@``)
        :param fn: ``fn(args) -> ActionResult | bool | None`` called with the validated model
        :param args_model: pydantic model the plan's ``action_args`` must validate against
        :param risk: the action's risk
        :param enabled: whether it may run
        :param description: one line for documentation and the UI
        :param risk_for: ``risk_for(args) -> Risk`` when the risk depends on the arguments
        """
        if not REGISTERED_NAME_RE.match(name):
            raise ValueError(f"invalid action name {name!r}")
        if not (isinstance(args_model, type) and issubclass(args_model, BaseModel)):
            raise TypeError("args_model must be a pydantic model class")
        spec = ActionSpec(name, fn, args_model, Risk(risk), enabled, description, risk_for)
        with self._lock:
            self._specs[name] = spec
        return spec

    def set_enabled(self, name: str, enabled: bool) -> None:
        """Enable or disable a registered action."""
        with self._lock:
            self._specs[name] = replace(self._get_locked(name), enabled=enabled)

    def get(self, name: str) -> ActionSpec:
        """The action called ``name``; :class:`UnknownActionError` if there is none."""
        with self._lock:
            return self._get_locked(name)

    def _get_locked(self, name: str) -> ActionSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownActionError(f"no recovery action named {name!r} is registered") from None

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._specs

    def names(self) -> list[str]:
        """Every registered name."""
        with self._lock:
            return sorted(self._specs)

    def enabled_names(self) -> frozenset[str]:
        """Names of the actions that may run."""
        with self._lock:
            return frozenset(name for name, spec in self._specs.items() if spec.enabled)

    def validate(self, name: str, args: Mapping[str, Any] | BaseModel) -> BaseModel:
        """Validate ``args`` for action ``name`` and return the model instance.

        :raises UnknownActionError: no such action
        :raises InvalidActionArgsError: the arguments do not fit the model
        """
        spec = self.get(name)
        data = args.model_dump() if isinstance(args, BaseModel) else dict(args)
        try:
            return spec.args_model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "args"
            raise InvalidActionArgsError(f"{name}: {where}: {first.get('msg', 'invalid')}") from None

    def run(self, name: str, args: Mapping[str, Any] | BaseModel) -> ActionResult:
        """Validate and run an enabled action; its exceptions become a failed result.

        :raises UnknownActionError: no such action
        :raises ActionDisabledError: the action is disabled
        :raises InvalidActionArgsError: the arguments do not fit the model
        """
        spec = self.get(name)
        if not spec.enabled:
            raise ActionDisabledError(f"recovery action {name!r} is disabled")
        model = self.validate(name, args)
        try:
            return _as_result(spec.fn(model))
        except Exception as exc:
            return ActionResult(False, f"{name} raised {type(exc).__name__}: {exc}"[:500])


def _as_result(value: ActionResult | bool | None) -> ActionResult:
    if isinstance(value, ActionResult):
        return value
    if value is None or value is True:
        return ActionResult(True, "done")
    return ActionResult(False, "the action reported failure")


def make_wait_for_service(
    probe: Probe,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[WaitForServiceArgs], ActionResult]:
    """Build the ``wait-for-service`` implementation around ``probe``.

    :param probe: ``probe(name) -> Health``; exceptions count as ``unknown``
    :param sleep: injectable for tests
    :param clock: injectable for tests
    """

    def wait_for_service(args: WaitForServiceArgs) -> ActionResult:
        deadline = clock() + args.timeout_seconds
        polls = 0
        while True:
            state = _probe_safely(probe, args.service)
            polls += 1
            if state is Health.HEALTHY:
                return ActionResult(True, f"{args.service} healthy after {polls} probe(s)")
            if clock() >= deadline:
                return ActionResult(
                    False, f"{args.service} not healthy after {args.timeout_seconds}s (last: {state.value})"
                )
            sleep(min(args.poll_seconds, max(deadline - clock(), 0.0)))

    return wait_for_service


def _probe_safely(probe: Probe, name: str) -> Health:
    try:
        return Health(probe(name))
    except Exception:
        return Health.UNKNOWN


Runner = Callable[..., "subprocess.CompletedProcess[str]"]


def make_restart_service(
    allowed_units: Collection[str],
    *,
    probe: Probe | None = None,
    runner: Runner = subprocess.run,
    which: Callable[[str], str | None] = shutil.which,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[RestartServiceArgs], ActionResult]:
    """Build the ``restart-service`` implementation.

    The command is ``[<path of systemctl>, "restart", <unit>]``, run without a shell and with a
    timeout; the unit must match :data:`SERVICE_NAME_RE` and be one of ``allowed_units`` (the
    configured ``systemd_units``).

    :param allowed_units: units that may be restarted (``.service`` optional)
    :param probe: if given, wait for the unit to be healthy afterwards
    :param runner: ``subprocess.run`` or a stand-in with the same signature
    :param which: resolves the ``systemctl`` path
    """
    allowed = frozenset(unit_stem(unit) for unit in allowed_units if SERVICE_NAME_RE.match(unit))

    def restart_service(args: RestartServiceArgs) -> ActionResult:
        if not SERVICE_NAME_RE.match(args.unit) or unit_stem(args.unit) not in allowed:
            return ActionResult(False, f"unit {args.unit!r} is not in the configured systemd_units")
        systemctl = which("systemctl")
        if systemctl is None:
            return ActionResult(False, "systemctl not found on this host")
        try:
            done = runner(
                [systemctl, "restart", args.unit],
                capture_output=True,
                text=True,
                timeout=args.timeout_seconds,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ActionResult(
                False, f"systemctl restart {args.unit} timed out after {args.timeout_seconds}s"
            )
        except OSError as exc:
            return ActionResult(False, f"systemctl could not run: {exc.strerror or exc}")
        if done.returncode != 0:
            tail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit {done.returncode}"]
            return ActionResult(False, f"systemctl restart {args.unit} failed: {tail[0][:200]}")
        return _after_restart(args, probe, sleep, clock)

    return restart_service


def _after_restart(
    args: RestartServiceArgs,
    probe: Probe | None,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> ActionResult:
    if probe is None or args.wait_healthy_seconds == 0:
        return ActionResult(True, f"restarted {args.unit}")
    wait = make_wait_for_service(probe, sleep=sleep, clock=clock)
    waited = wait(
        WaitForServiceArgs(
            service=args.unit, timeout_seconds=max(args.wait_healthy_seconds, 1), poll_seconds=2.0
        )
    )
    return ActionResult(waited.succeeded, f"restarted {args.unit}; {waited.detail}")


def _unavailable(what: str) -> Callable[[Any], ActionResult]:
    def unavailable(_args: Any) -> ActionResult:
        return ActionResult(False, f"no implementation of {what} was provided")

    return unavailable


def build_default_registry(
    *,
    retry: Callable[[RetryFromFailureArgs], ActionResult | bool | None] | None = None,
    probe: Probe | None = None,
    handlers: HandlerRegistry | None = None,
    checkpoints: CheckpointSource | None = None,
    restart_enabled: bool = False,
    allowed_units: Collection[str] | None = None,
    runner: Runner = subprocess.run,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> ActionRegistry:
    """A registry with the four built-in actions.

    :param retry: implementation of ``retry-from-failure`` (the Airflow adapter's); disabled if None
    :param probe: health probe for ``wait-for-service``; disabled if None
    :param handlers: the handler registry ``run-handler`` looks names up in; disabled if None
    :param checkpoints: where ``run-handler`` reads the latest checkpoint (the ledger)
    :param restart_enabled: enable ``restart-service`` (off by default)
    :param allowed_units: units ``restart-service`` may touch; default the configured systemd_units
    """
    registry = ActionRegistry()
    registry.register(
        RETRY_FROM_FAILURE,
        retry or _unavailable(RETRY_FROM_FAILURE),
        RetryFromFailureArgs,
        Risk.LOW,
        enabled=retry is not None,
        description="Clear the failed task instances so the run resumes from them.",
    )
    registry.register(
        WAIT_FOR_SERVICE,
        make_wait_for_service(probe, sleep=sleep, clock=clock) if probe else _unavailable("a health probe"),
        WaitForServiceArgs,
        Risk.NONE,
        enabled=probe is not None,
        description="Wait until a service or resource is healthy, then retry.",
    )
    units = allowed_units if allowed_units is not None else _configured_units()
    registry.register(
        RESTART_SERVICE,
        make_restart_service(units, probe=probe, runner=runner, sleep=sleep, clock=clock),
        RestartServiceArgs,
        Risk.MEDIUM,
        enabled=restart_enabled,
        description="systemctl restart of a configured unit, then wait until healthy.",
    )
    _register_handler_action(registry, handlers, checkpoints)
    return registry


def _register_handler_action(
    registry: ActionRegistry, handlers: HandlerRegistry | None, checkpoints: CheckpointSource | None
) -> None:
    if handlers is None:
        registry.register(
            RUN_HANDLER,
            _unavailable("a handler registry"),
            RunHandlerArgs,
            Risk.MEDIUM,
            enabled=False,
            description="Run a registered recovery handler.",
        )
        return

    def run_handler(args: RunHandlerArgs) -> ActionResult:
        return handlers.run(args, checkpoints=checkpoints)

    def handler_risk(args: RunHandlerArgs) -> Risk:
        entry = handlers.get(args.handler)
        return entry.risk if entry is not None else Risk.HIGH

    registry.register(
        RUN_HANDLER,
        run_handler,
        RunHandlerArgs,
        Risk.MEDIUM,
        description="Run a registered recovery handler.",
        risk_for=handler_risk,
    )


def _configured_units() -> list[str]:
    from qubinode_recovery_provider import config

    try:
        return config.get_list("systemd_units")
    except config.ConfigError:
        return []
