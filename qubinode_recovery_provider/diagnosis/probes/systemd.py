"""systemd probes: one ``systemctl show`` call for every configured unit, mapped to
:class:`ServiceHealth`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from qubinode_recovery_provider.categories import Health
from qubinode_recovery_provider.diagnosis.probes.commands import (
    DEFAULT_TIMEOUT,
    CommandResult,
    clean_names,
    first_line,
    run_command,
    sane_timeout,
    unknown_service,
    valid_name,
)

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import ServiceHealth

_SYSTEMD_PROPERTIES = "Id,LoadState,ActiveState,SubState,Result,NRestarts,ExecMainStatus"
_SYSTEMD_UNAVAILABLE_MARKERS = (
    "system has not been booted with systemd",
    "failed to connect to bus",
    "failed to get d-bus connection",
    "running in chroot",
)
_SYSTEMD_TRANSITIONAL = frozenset({"activating", "reloading", "deactivating", "refreshing", "maintenance"})


def parse_systemctl_show(output: str) -> list[dict[str, str]]:
    """Split ``systemctl show`` output into one ``KEY=VALUE`` dict per unit.

    :param output: stdout of ``systemctl show`` for one or more units (blocks separated by blank lines).
    """
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in output.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def _unit_id(name: str) -> str:
    """Return the full unit id systemd reports for ``name`` (``.service`` when no suffix is given).

    :param name: a unit name as configured.
    """
    return name if "." in name.rsplit("/", 1)[-1] else f"{name}.service"


def _as_int(value: str | None) -> int | None:
    """Parse an integer property, ``None`` when it is missing or not a number.

    :param value: the raw property value.
    """
    try:
        return int(value) if value not in (None, "", "[not set]") else None
    except ValueError:
        return None


def systemd_unit_health(name: str, props: Mapping[str, str]) -> ServiceHealth:
    """Map one unit's ``systemctl show`` properties to a :class:`ServiceHealth`.

    :param name: the unit name as requested.
    :param props: its properties (Id, LoadState, ActiveState, SubState, Result, NRestarts, ...).
    """
    from qubinode_recovery_provider.models import ServiceHealth  # built after the probe

    load = props.get("LoadState", "")
    active = props.get("ActiveState", "")
    sub = props.get("SubState", "")
    restarts = _as_int(props.get("NRestarts")) or 0
    status = _as_int(props.get("ExecMainStatus"))
    result = props.get("Result", "")

    def health(state: Health, detail: str) -> ServiceHealth:
        return ServiceHealth(name=name, kind="systemd", state=state, detail=detail)

    if load == "not-found":
        return health(Health.DOWN, "not installed")
    if load in {"masked", "error", "bad-setting"}:
        return health(Health.DOWN, f"load state {load}")
    described = f"{active} ({sub})" if sub else active
    if restarts:
        described += f", restarted {restarts} time{'s' if restarts != 1 else ''}"
    if active == "failed":
        return health(Health.DOWN, f"{described}, result={result or '?'}, exit status={status}")
    if active == "inactive":
        return health(Health.DOWN, described)
    if active in _SYSTEMD_TRANSITIONAL:
        return health(Health.DEGRADED, described)
    if active == "active":
        return health(Health.DEGRADED if restarts else Health.HEALTHY, described)
    return health(Health.UNKNOWN, f"unrecognised state {described or 'missing'}")


def _match_blocks(units: Sequence[str], blocks: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """Pair requested units with output blocks, by ``Id`` first, then by position.

    :param units: the requested unit names.
    :param blocks: parsed ``systemctl show`` blocks.
    """
    by_id = {block.get("Id", ""): block for block in blocks}
    matched: dict[str, dict[str, str]] = {}
    for position, unit in enumerate(units):
        block = by_id.get(_unit_id(unit)) or by_id.get(unit)
        if block is None and len(blocks) == len(units):
            block = blocks[position]
        if block is not None:
            matched[unit] = block
    return matched


def collect_systemd(
    units: Iterable[str] | str, timeout: float | None = DEFAULT_TIMEOUT
) -> list[ServiceHealth]:
    """Probe systemd units with one ``systemctl show`` call; never raises.

    :param units: unit names (``.service`` is assumed when no suffix is given).
    :param timeout: seconds the ``systemctl`` call may take.
    """
    names = clean_names(units)
    valid = [n for n in names if valid_name(n)]
    invalid = {n: "invalid unit name" for n in names if not valid_name(n)}
    if not valid:
        return [unknown_service(n, "systemd", invalid[n]) for n in names]
    argv = ["systemctl", "show", "--no-pager", f"--property={_SYSTEMD_PROPERTIES}", "--", *valid]
    result = run_command(argv, sane_timeout(timeout))
    blocks = parse_systemctl_show(result.stdout) if not result.error else []
    matched = _match_blocks(valid, blocks)
    reason = _systemd_failure_reason(result)
    services: list[ServiceHealth] = []
    for name in names:
        if name in invalid:
            services.append(unknown_service(name, "systemd", invalid[name]))
        elif name in matched:
            services.append(systemd_unit_health(name, matched[name]))
        else:
            services.append(unknown_service(name, "systemd", reason))
    return services


def _systemd_failure_reason(result: CommandResult) -> str:
    """Explain why a unit got no usable ``systemctl show`` block.

    :param result: the ``systemctl`` command result.
    """
    if result.error:
        return result.error
    stderr = result.stderr.lower()
    for marker in _SYSTEMD_UNAVAILABLE_MARKERS:
        if marker in stderr:
            return f"systemd unavailable: {first_line(result.stderr)}"
    detail = first_line(result.stderr) or "no output for this unit"
    return f"systemctl exited {result.returncode}: {detail}"
