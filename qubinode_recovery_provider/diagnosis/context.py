"""The context collector: what the machine looked like around a failure.

:class:`ContextCollector` runs the probes of :mod:`qubinode_recovery_provider.diagnosis.probes`
(resources, systemd, podman, reachability) concurrently, each bounded by a short timeout and all by one
deadline, and assembles a :class:`DiagnosticContext` with the dependency map. A probe that fails or misses
the deadline gives :attr:`Health.UNKNOWN` entries and a ``probe_errors`` reason: a diagnosis must never be
lost because the context around it could not be gathered.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from qubinode_recovery_provider import config
from qubinode_recovery_provider.diagnosis.probes.commands import (
    DEFAULT_TIMEOUT,
    error_text,
    run_bounded,
    sane_timeout,
    unknown_service,
)
from qubinode_recovery_provider.diagnosis.probes.dependencies import dependents_of, normalize_dependency_map
from qubinode_recovery_provider.diagnosis.probes.network import check_reachability, unfinished_target
from qubinode_recovery_provider.diagnosis.probes.podman import collect_podman
from qubinode_recovery_provider.diagnosis.probes.resources import collect_resources
from qubinode_recovery_provider.diagnosis.probes.systemd import collect_systemd
from qubinode_recovery_provider.jsontext import loads as json_loads

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import DiagnosticContext

T = TypeVar("T")


def _config_value(getter: Callable[[str], T], option: str, fallback: T, errors: list[str]) -> T:
    """Read one option, noting a bad value in ``errors`` and falling back.

    :param getter: a :mod:`config` getter (``get_list``, ``get_float``, ...).
    :param option: the option name.
    :param fallback: the value used when the option cannot be read.
    :param errors: receives the reason when it cannot.
    """
    try:
        return getter(option)
    except Exception as exc:
        errors.append(f"config {option}: {exc}")
        return fallback


def _names(given: Iterable[str] | str | None, option: str, errors: list[str]) -> list[str]:
    """Return a list of names from an argument, or from the comma-separated ``option`` when it is None.

    :param given: names, a comma-separated string, or ``None`` for the configured value.
    :param option: the configuration option to fall back on.
    :param errors: receives the reason when the option cannot be read.
    """
    if given is None:
        return _config_value(config.get_list, option, [], errors)
    if isinstance(given, str):
        return [item.strip() for item in given.split(",") if item.strip()]
    return [str(item) for item in given]


class ContextCollector:
    """Build a :class:`DiagnosticContext` from concurrent, individually bounded probes.

    Every argument left as ``None`` is read from the ``[qubinode_recovery]`` configuration. An
    unreadable option becomes a ``probe_errors`` entry, never an exception.

    :param systemd_units: units to probe.
    :param podman_containers: containers to probe.
    :param reachability_targets: ``host:port`` targets to probe.
    :param dependency_map: service -> dependents (a JSON string is accepted too).
    :param timeout: per-probe timeout in seconds (at most ``deadline``).
    :param deadline: overall budget in seconds (default: twice the timeout plus one second).
    :param cpu_interval: CPU sampling interval passed to :func:`collect_resources`.
    """

    def __init__(
        self,
        *,
        systemd_units: Iterable[str] | str | None = None,
        podman_containers: Iterable[str] | str | None = None,
        reachability_targets: Iterable[str] | str | None = None,
        dependency_map: Mapping[str, Iterable[str]] | str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        cpu_interval: float | None = 0.1,
    ) -> None:
        self.config_errors: list[str] = []
        errors = self.config_errors
        self.systemd_units = _names(systemd_units, "systemd_units", errors)
        self.podman_containers = _names(podman_containers, "podman_containers", errors)
        self.reachability_targets = _names(reachability_targets, "reachability_targets", errors)
        if timeout is None:
            timeout = _config_value(config.get_float, "probe_timeout_seconds", DEFAULT_TIMEOUT, errors)
        self.timeout = sane_timeout(timeout)
        self.deadline = sane_timeout(deadline) if deadline is not None else self.timeout * 2 + 1.0
        # a probe outliving the overall deadline would be abandoned, its command still running: no
        # probe may take longer than the whole collection
        self.timeout = min(self.timeout, self.deadline)
        self.cpu_interval = cpu_interval
        self.dependency_map = self._load_dependency_map(dependency_map)

    def _load_dependency_map(self, given: Mapping[str, Iterable[str]] | str | None) -> dict[str, list[str]]:
        """Resolve the dependency map from the argument or the configuration.

        :param given: the constructor argument.
        """
        raw: Any
        if given is None:
            raw = _config_value(config.get_json, "dependency_map", None, self.config_errors)
        elif isinstance(given, str):
            try:
                raw = json_loads(given) if given.strip() else None
            except ValueError as exc:
                self.config_errors.append(f"dependency_map is not valid JSON: {exc}")
                raw = None
        else:
            raw = {key: list(values) for key, values in given.items()}
        mapping, errors = normalize_dependency_map(raw)
        self.config_errors.extend(errors)
        return mapping

    def collect(self, log_lines: Iterable[str] | None = None) -> DiagnosticContext:
        """Run every probe concurrently within the deadline and assemble the context; never raises.

        :param log_lines: lines of the failed attempt's log to carry along.
        """
        probes: list[tuple[str, Callable[[], Any]]] = [
            ("resources", lambda: collect_resources(self.cpu_interval)),
        ]
        if self.systemd_units:
            probes.append(("systemd", lambda: collect_systemd(self.systemd_units, self.timeout)))
        if self.podman_containers:
            probes.append(("podman", lambda: collect_podman(self.podman_containers, self.timeout)))
        if self.reachability_targets:
            probes.append(("network", lambda: check_reachability(self.reachability_targets, self.timeout)))
        outcomes = run_bounded([call for _, call in probes], self.deadline)
        # the models once the probes are done (in a fresh process, building them would delay the probes)
        from qubinode_recovery_provider.models import DiagnosticContext

        context = DiagnosticContext(
            host=_hostname(),
            dependency_map=self.dependency_map,
            probe_errors=list(self.config_errors),
            log_lines=[str(line) for line in log_lines] if log_lines is not None else [],
        )
        for (name, _), (status, value) in zip(probes, outcomes, strict=True):
            self._store(context, name, status, value)
        return context

    def _store(self, context: DiagnosticContext, name: str, status: str, value: Any) -> None:
        """Put one probe's result into ``context``, or UNKNOWN entries when it failed.

        :param context: the context being built.
        :param name: ``resources``, ``systemd``, ``podman`` or ``network``.
        :param status: the :func:`run_bounded` status.
        :param value: the probe's result when ``status`` is ``done``.
        """
        if status == "done":
            reason = ""
        elif status.startswith("error:"):
            reason = f"{name} probe failed: {status.removeprefix('error:')}"
        else:
            reason = f"{name} probe did not finish within {self.deadline:g}s"
        if reason:
            context.probe_errors.append(reason)
        result = value if not reason else self._unknown_entry(name, reason)
        if name == "resources":
            context.resources = result
        elif name == "network":
            context.network = result
        else:
            context.services += result

    def _unknown_entry(self, name: str, reason: str) -> Any:
        """Return the UNKNOWN stand-in for a probe that failed or missed the deadline.

        :param name: ``resources``, ``systemd``, ``podman`` or ``network``.
        :param reason: why the probe has no result.
        """
        if name == "resources":
            from qubinode_recovery_provider.models import ResourceSnapshot

            return ResourceSnapshot(detail=reason)
        if name == "network":
            return [unfinished_target(t, "error:" + reason, self.timeout) for t in self.reachability_targets]
        names = self.systemd_units if name == "systemd" else self.podman_containers
        return [unknown_service(n, name, reason) for n in names]

    def dependents_of(self, service: str) -> list[str]:
        """Return what depends on ``service`` according to this collector's dependency map.

        :param service: the service whose dependents are wanted.
        """
        return dependents_of(service, self.dependency_map)


def _hostname() -> str | None:
    """Return this machine's host name, ``None`` if it cannot be read."""
    try:
        return socket.gethostname() or None
    except OSError:
        return None


def collect_context(
    *,
    systemd_units: Iterable[str] | str | None = None,
    podman_containers: Iterable[str] | str | None = None,
    reachability_targets: Iterable[str] | str | None = None,
    dependency_map: Mapping[str, Iterable[str]] | str | None = None,
    timeout: float | None = None,
    deadline: float | None = None,
    log_lines: Iterable[str] | None = None,
) -> DiagnosticContext:
    """Collect a :class:`DiagnosticContext` in one call (see :class:`ContextCollector`); never raises.

    :param systemd_units: units to probe (default: the ``systemd_units`` option).
    :param podman_containers: containers to probe (default: the ``podman_containers`` option).
    :param reachability_targets: targets to probe (default: the ``reachability_targets`` option).
    :param dependency_map: service -> dependents (default: the ``dependency_map`` option).
    :param timeout: per-probe timeout (default: the ``probe_timeout_seconds`` option).
    :param deadline: overall budget in seconds.
    :param log_lines: lines of the failed attempt's log to carry along.
    """
    lines: list[str] = []
    try:
        lines = [str(line) for line in log_lines] if log_lines is not None else []
        collector = ContextCollector(
            systemd_units=systemd_units,
            podman_containers=podman_containers,
            reachability_targets=reachability_targets,
            dependency_map=dependency_map,
            timeout=timeout,
            deadline=deadline,
        )
        return collector.collect(lines)
    except Exception as exc:  # last line of defence: a context must always come back
        from qubinode_recovery_provider.models import DiagnosticContext

        return DiagnosticContext(
            host=_hostname(),
            log_lines=lines,
            probe_errors=[f"context collection failed: {error_text(exc)}"],
        )
