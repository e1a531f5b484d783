"""podman probes: one ``podman inspect`` call for every configured container, mapped to
:class:`ServiceHealth`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.categories import Health
from qubinode_recovery_provider.diagnosis.probes.commands import (
    DEFAULT_TIMEOUT,
    clean_names,
    first_line,
    run_command,
    sane_timeout,
    unknown_service,
    valid_name,
)
from qubinode_recovery_provider.jsontext import loads as json_loads

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import ServiceHealth

_PODMAN_DEGRADED_STATUSES = frozenset({"paused", "restarting", "stopping", "removing"})
_PODMAN_DOWN_STATUSES = frozenset({"exited", "stopped", "dead", "created", "configured", "initialized"})


def podman_container_health(name: str, record: Mapping[str, Any]) -> ServiceHealth:
    """Map one ``podman inspect`` record to a :class:`ServiceHealth`.

    :param name: the container name as requested.
    :param record: the container's inspect record.
    """
    from qubinode_recovery_provider.models import ServiceHealth  # built after the probe

    raw_state = record.get("State")
    state: Mapping[str, Any] = raw_state if isinstance(raw_state, Mapping) else {}
    status = str(state.get("Status") or "").lower()
    running = bool(state.get("Running")) or status == "running"
    health_block = state.get("Health") or state.get("Healthcheck") or {}
    check = str(health_block.get("Status") or "").lower() if isinstance(health_block, Mapping) else ""
    exit_code = state.get("ExitCode")
    oom = bool(state.get("OOMKilled"))

    def health(value: Health, detail: str) -> ServiceHealth:
        return ServiceHealth(name=name, kind="podman", state=value, detail=detail)

    if running and check in {"unhealthy", "starting"}:
        return health(Health.DEGRADED, f"running, healthcheck {check}")
    if running and status in ("running", ""):
        return health(Health.HEALTHY, f"running{', healthcheck ' + check if check else ''}")
    if status in _PODMAN_DEGRADED_STATUSES:
        return health(Health.DEGRADED, status)
    if status in _PODMAN_DOWN_STATUSES or (status and not running):
        detail = f"{status}, exit code {exit_code}" + (", OOM killed" if oom else "")
        return health(Health.DOWN, detail)
    return health(Health.UNKNOWN, f"unrecognised state {status or 'missing'}")


def _index_records(records: list[Any]) -> dict[str, Mapping[str, Any]]:
    """Index inspect records by name and id.

    :param records: the decoded ``podman inspect`` array.
    """
    index: dict[str, Mapping[str, Any]] = {}
    for record in records:
        if not isinstance(record, Mapping):
            continue
        name = str(record.get("Name") or "").lstrip("/")
        if name:
            index[name] = record
        if record.get("Id"):
            index[str(record["Id"])] = record
    return index


def _find_record(name: str, index: Mapping[str, Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """Find a container by name, full id or id prefix.

    :param name: the requested name or id.
    :param index: records by name and id.
    """
    if name in index:
        return index[name]
    for key, record in index.items():
        if len(name) >= 12 and key.startswith(name):
            return record
    return None


def _decode_inspect(stdout: str) -> list[Any] | None:
    """Decode ``podman inspect --format json`` output; ``None`` when it is not a JSON array.

    :param stdout: the command's stdout.
    """
    try:
        data = json_loads(stdout) if stdout.strip() else None
    except ValueError:
        return None
    return data if isinstance(data, list) else None


def collect_podman(
    containers: Iterable[str] | str, timeout: float | None = DEFAULT_TIMEOUT
) -> list[ServiceHealth]:
    """Probe podman containers with one ``podman inspect`` call; never raises.

    :param containers: container names or ids.
    :param timeout: seconds the ``podman`` call may take.
    """
    from qubinode_recovery_provider.models import ServiceHealth  # built after the probe

    names = clean_names(containers)
    valid = [n for n in names if valid_name(n)]
    if not valid:
        return [unknown_service(n, "podman", "invalid container name") for n in names]
    argv = ["podman", "inspect", "--type", "container", "--format", "json", "--", *valid]
    result = run_command(argv, sane_timeout(timeout))
    records = _decode_inspect(result.stdout) if not result.error else None
    index = _index_records(records or [])
    missing_known = records is not None or "no such" in result.stderr.lower()
    if result.error:
        reason = result.error
    else:
        reason = f"podman exited {result.returncode}: {first_line(result.stderr) or 'unreadable output'}"
    services: list[ServiceHealth] = []
    for name in names:
        record = _find_record(name, index) if name in valid else None
        if name not in valid:
            services.append(unknown_service(name, "podman", "invalid container name"))
        elif record is not None:
            services.append(podman_container_health(name, record))
        elif missing_known:
            services.append(
                ServiceHealth(name=name, kind="podman", state=Health.DOWN, detail="no such container")
            )
        else:
            services.append(unknown_service(name, "podman", reason))
    return services
