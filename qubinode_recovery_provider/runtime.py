"""The provider's runtime: what one process works with, built in one place.

A :class:`Runtime` holds the ledger, the failure analyzer, the recovery handlers, the allowlisted actions
(with the implementations of ``retry-from-failure`` and ``wait-for-service``), the policy switches and the
approval callback. Everything is built on first use, from the configuration, and then kept: loading the
pattern library or opening the ledger once per process, not once per failure, is what keeps the failure
callback inside its budget.

There is one runtime per process, :func:`current` (the public :mod:`~qubinode_recovery_provider.api`
configures it; :func:`reset` forgets it, for tests). Adapters read it once and pass what they need to the
core, which never reaches for process state itself. An operator that needs other implementations (the
recovery operators' ``retry-from-failure`` through their own API connection) derives a runtime with
:meth:`Runtime.with_retry`, which shares the ledger, analyzer and handlers and changes nothing for others.

Plain Python: no Airflow import.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.categories import Health, Risk

if TYPE_CHECKING:
    from pydantic import BaseModel

    from qubinode_recovery_provider.diagnosis import FailureAnalyzer
    from qubinode_recovery_provider.diagnosis.llm import SecondOpinion
    from qubinode_recovery_provider.recovery.actions import ActionFn, ActionRegistry, ActionSpec, Probe
    from qubinode_recovery_provider.recovery.executor import ApprovalCallback
    from qubinode_recovery_provider.recovery.handlers import HandlerRegistry
    from qubinode_recovery_provider.recovery.planner import RecoveryPlanner
    from qubinode_recovery_provider.recovery.policy import RecoveryPolicy
    from qubinode_recovery_provider.store import Ledger


log = logging.getLogger(__name__)

#: "Not given" for :meth:`Runtime.configure` (None is a value there: it disables an implementation).
UNSET: Any = object()


@dataclass(frozen=True)
class CustomAction:
    """An action added with :meth:`Runtime.register_action`, kept so a rebuilt registry has it too."""

    name: str
    fn: ActionFn
    args_model: type[BaseModel]
    risk: Risk
    enabled: bool
    description: str


@dataclass
class _Shared:
    """What a runtime and the runtimes derived from it share (built once)."""

    lock: threading.RLock = field(default_factory=threading.RLock)  # registry and custom actions
    ledger_lock: threading.Lock = field(default_factory=threading.Lock)
    analyzer_lock: threading.Lock = field(default_factory=threading.Lock)
    failure_ledgers_lock: threading.Lock = field(default_factory=threading.Lock)
    ledger: Any | None = None
    analyzer: FailureAnalyzer | None = None
    second_opinion: Any = UNSET
    failure_ledgers: dict[tuple[str, str], Ledger] = field(default_factory=dict)
    handlers: HandlerRegistry | None = None  # made on first use (the recovery package is not
    # imported by processes that only diagnose: a retry policy's decision)
    custom_actions: list[CustomAction] = field(default_factory=list)


class Runtime:
    """What the provider works with in this process (see the module docstring).

    :param retry: the ``retry-from-failure`` implementation; None leaves that action disabled
    :param probe: ``probe(name) -> Health`` for ``wait-for-service``; default :func:`context_probe`; None
        disables waiting
    :param restart_enabled: enable the ``restart-service`` action (off by default)
    """

    def __init__(
        self,
        *,
        retry: ActionFn | None = None,
        probe: Probe | None = UNSET,
        restart_enabled: bool = False,
        _shared: _Shared | None = None,
    ) -> None:
        self._shared = _shared or _Shared()
        self.retry = retry
        self.probe: Probe | None = context_probe if probe is UNSET else probe
        self.restart_enabled = restart_enabled
        self.auto_override: bool | None = None
        self.approval_callback: ApprovalCallback | None = None
        self._registry: ActionRegistry | None = None

    # --- built on first use ----------------------------------------------------------------------

    @property
    def ledger(self) -> Any:
        """The ledger: the configured one (:meth:`Ledger.from_config`), opened on first use."""
        with self._shared.ledger_lock:
            if self._shared.ledger is None:
                from qubinode_recovery_provider.store import Ledger

                self._shared.ledger = Ledger.from_config()
            return self._shared.ledger

    @ledger.setter
    def ledger(self, ledger: Any) -> None:
        with self._shared.ledger_lock:
            self._shared.ledger = ledger

    def ledger_or_none(self) -> Any | None:
        """The ledger, or None when it cannot even be opened (a malformed URL)."""
        try:
            return self.ledger
        except Exception:
            return None

    def failure_ledger(self, url: str | None, timeout: float) -> Ledger:
        """The ledger a failure callback writes to: ``url`` (default: the configured one) with this lock
        timeout and no automatic spool replay (a failing task must not spend its budget on backlog); one
        per URL and spool directory."""
        from qubinode_recovery_provider.store import Ledger, resolve_ledger_url
        from qubinode_recovery_provider.store.url import default_spool_dir

        resolved = url or resolve_ledger_url()
        spool = default_spool_dir()
        key = (resolved, str(spool))
        with self._shared.failure_ledgers_lock:
            ledger = self._shared.failure_ledgers.get(key)
            if ledger is None:
                ledger = Ledger(resolved, spool, timeout=timeout, auto_flush_interval=0)
                self._shared.failure_ledgers[key] = ledger
            return ledger

    @property
    def analyzer(self) -> FailureAnalyzer:
        """The failure analyzer (building it loads the pattern packs). Its prefilter is Hyperscan when
        the compiled database is cached (``qubinode-recovery patterns check`` and every CLI diagnosis
        write it), else the literal index with the same hits: a task process never spends its failure
        budget compiling (about 2 s of CPU, several failing tasks at once each paying it)."""
        with self._shared.analyzer_lock:
            if self._shared.analyzer is None:
                from qubinode_recovery_provider.diagnosis import FailureAnalyzer

                # patterns only: the retry policy decides from evidence; the failure path and the
                # recovery DAG ask the second opinion themselves, within their own time (second_opinion)
                self._shared.analyzer = FailureAnalyzer(index_kind="cached", use_llm=False)
            return self._shared.analyzer

    @analyzer.setter
    def analyzer(self, analyzer: FailureAnalyzer | None) -> None:
        with self._shared.analyzer_lock:
            self._shared.analyzer = analyzer

    @property
    def second_opinion(self) -> SecondOpinion | None:
        """The configured LLM second opinion (``docs/llm.md``), built on first use; None when no model is
        configured or the configuration is malformed (logged). Assign one, None (off), or :data:`UNSET`
        (read the configuration again on next use)."""
        with self._shared.analyzer_lock:
            if self._shared.second_opinion is UNSET:
                self._shared.second_opinion = _configured_second_opinion()
            return self._shared.second_opinion  # type: ignore[no-any-return]

    @second_opinion.setter
    def second_opinion(self, opinion: SecondOpinion | None) -> None:
        with self._shared.analyzer_lock:
            self._shared.second_opinion = opinion

    @property
    def handlers(self) -> HandlerRegistry:
        """The registered rollback handlers."""
        with self._shared.lock:
            if self._shared.handlers is None:
                from qubinode_recovery_provider.recovery.handlers import HandlerRegistry

                self._shared.handlers = HandlerRegistry()
            return self._shared.handlers

    @property
    def registry(self) -> ActionRegistry:
        """The allowlisted actions: the built-in ones with this runtime's implementations, plus
        :meth:`register_action`'s."""
        with self._shared.lock:
            if self._registry is None:
                self._registry = self._build_registry()
            return self._registry

    def _build_registry(self) -> ActionRegistry:
        from qubinode_recovery_provider.recovery.actions import build_default_registry

        registry = build_default_registry(
            retry=self.retry,
            probe=self.probe,
            handlers=self.handlers,
            checkpoints=_LazyCheckpoints(self),
            restart_enabled=self.restart_enabled,
        )
        for custom in self._shared.custom_actions:
            registry.register(
                custom.name,
                custom.fn,
                custom.args_model,
                custom.risk,
                enabled=custom.enabled,
                description=custom.description,
            )
        return registry

    def policy(self) -> RecoveryPolicy:
        """The configured policy with this process's auto-recovery switch applied."""
        from qubinode_recovery_provider.recovery.policy import RecoveryPolicy

        if self.auto_override is None:
            return RecoveryPolicy.from_config()
        return RecoveryPolicy.from_config(auto_recovery_enabled=self.auto_override)

    def planner(self, *, learn: bool = True) -> RecoveryPlanner:
        """A planner over this runtime's handlers and actions; ``learn`` weighs options by the ledger's
        recorded outcomes."""
        from qubinode_recovery_provider.recovery.planner import RecoveryPlanner

        return RecoveryPlanner(
            ledger=self.ledger_or_none() if learn else None,
            handlers=self.handlers,
            actions=self.registry,
            min_auto_confidence=self.policy().min_auto_confidence,
        )

    # --- changes ---------------------------------------------------------------------------------

    def configure(
        self,
        *,
        retry: ActionFn | None = UNSET,
        probe: Probe | None = UNSET,
        restart_enabled: bool | None = None,
    ) -> None:
        """Change the action implementations (arguments left out stay); the registry is rebuilt on
        next use."""
        with self._shared.lock:
            if retry is not UNSET:
                self.retry = retry
            if probe is not UNSET:
                self.probe = probe
            if restart_enabled is not None:
                self.restart_enabled = restart_enabled
            self._registry = None

    def with_retry(self, retry: ActionFn | None) -> Runtime:
        """A runtime like this one (same ledger, analyzer, handlers, actions, probe and approval
        callback) whose ``retry-from-failure`` is ``retry``; this runtime is unchanged.

        The process's auto-recovery switch carries over only when it is off: a derived runtime runs in
        a deployment's operators, where ``[qubinode_recovery] auto_recovery_enabled`` is the master
        switch and a process may only turn it off."""
        derived = Runtime(
            retry=retry, probe=self.probe, restart_enabled=self.restart_enabled, _shared=self._shared
        )
        derived.auto_override = False if self.auto_override is False else None
        derived.approval_callback = self.approval_callback
        return derived

    def register_action(
        self,
        name: str,
        fn: ActionFn,
        args_model: type[BaseModel],
        risk: Risk = Risk.LOW,
        *,
        enabled: bool = True,
        description: str = "",
    ) -> ActionSpec:
        """Add an allowlisted automatic action (see :meth:`ActionRegistry.register`); it stays when the
        registry is rebuilt."""
        with self._shared.lock:
            spec = self.registry.register(
                name, fn, args_model, risk, enabled=enabled, description=description
            )
            self._shared.custom_actions.append(
                CustomAction(name, fn, args_model, spec.risk, enabled, description)
            )
            return spec


class _LazyCheckpoints:
    """Reads checkpoints from the runtime's ledger only when a handler runs."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime

    def latest_checkpoint(
        self, dag_id: str, task_id: str, run_id: str | None = None
    ) -> dict[str, Any] | None:
        latest: dict[str, Any] | None = self._runtime.ledger.latest_checkpoint(dag_id, task_id, run_id)
        return latest


def context_probe(name: str) -> Health:
    """Health of a systemd unit, podman container or resource (``memory``, ``cpu``, ``disk``), read
    with the diagnosis context collector; ``unknown`` when it cannot tell."""
    from qubinode_recovery_provider import config
    from qubinode_recovery_provider.diagnosis.probes import collect_podman, collect_resources, collect_systemd

    if name in {"memory", "cpu", "disk"}:
        return collect_resources().state
    if name in config.get_list("podman_containers"):
        found = collect_podman([name])
    else:
        found = collect_systemd([name])
    return found[0].state if found else Health.UNKNOWN


_LOCK = threading.Lock()
_CURRENT: list[Runtime] = []


def current() -> Runtime:
    """This process's runtime (built on first use)."""
    with _LOCK:
        if not _CURRENT:
            _CURRENT.append(Runtime())
        return _CURRENT[0]


def reset() -> None:
    """Forget this process's runtime (its ledger, analyzer, handlers, actions and switches); for tests."""
    with _LOCK:
        _CURRENT.clear()


def _configured_second_opinion() -> SecondOpinion | None:
    """The configured LLM second opinion; ``None`` (without importing the LLM module, which a failing
    task would otherwise load for nothing) when neither ``llm_model`` nor ``llm_conn_id`` is set."""
    from qubinode_recovery_provider import config

    if not (config.get("llm_model").strip() or config.get("llm_conn_id").strip()):
        return None
    from qubinode_recovery_provider.diagnosis.llm import second_opinion_for

    opinion, problem = second_opinion_for(None)
    if problem:
        log.warning("%s", problem)
    return opinion


__all__ = ["CustomAction", "Runtime", "context_probe", "current", "reset"]
