"""The recent journal of one systemd unit (``journalctl --output=json``), bounded in time and in lines.

It is what the reference guide's ``DiagnosticContext.get_plugin_logs(name, since_seconds)`` reads. Like
every probe it never raises: without ``journalctl``, or when the call fails or times out, it returns no
entry and the reason. Messages are redacted as they come in.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from qubinode_recovery_provider.diagnosis.probes.commands import (
    DEFAULT_TIMEOUT,
    first_line,
    run_command,
    sane_timeout,
    valid_name,
)
from qubinode_recovery_provider.jsontext import loads as json_loads
from qubinode_recovery_provider.redaction import redact

#: The most journal entries returned by one call.
MAX_ENTRIES = 500
#: The longest look-back accepted (seven days); longer windows are clipped to it.
MAX_SINCE_SECONDS = 7 * 24 * 3600
#: Characters kept of one message.
MAX_MESSAGE_CHARS = 4000


def journal_entries(
    unit: str,
    since_seconds: float = 300,
    timeout: float | None = DEFAULT_TIMEOUT,
    limit: int = MAX_ENTRIES,
) -> tuple[list[dict[str, Any]], str]:
    """Read the journal of ``unit`` for the last ``since_seconds``; never raises.

    :param unit: a systemd unit name (``.service`` optional), never an option.
    :param since_seconds: how far back to read (clipped to 1 s .. seven days).
    :param timeout: seconds the ``journalctl`` call may take.
    :param limit: the most entries returned (clipped to :data:`MAX_ENTRIES`).
    :return: ``(entries, reason)``: each entry ``{"timestamp", "unit", "priority", "message"}``, oldest
        first; ``reason`` is empty when the journal was read, else why there are no entries.
    """
    if not isinstance(unit, str) or not valid_name(unit.strip()):
        return [], f"invalid unit name {unit!r}"
    seconds = _window(since_seconds)
    count = max(1, min(int(limit), MAX_ENTRIES))
    argv = [
        "journalctl",
        "--no-pager",
        "--output=json",
        f"--since=-{seconds}s",
        f"--lines={count}",
        f"--unit={unit.strip()}",
    ]
    result = run_command(argv, sane_timeout(timeout))
    if result.error:
        return [], result.error
    if result.returncode != 0:
        return [], f"journalctl exited with {result.returncode}: {first_line(result.stderr)}"
    entries = [entry for line in result.stdout.splitlines() if (entry := _entry(line)) is not None]
    return entries[-count:], ""


def _window(since_seconds: float) -> int:
    """``since_seconds`` as whole seconds from 1 to :data:`MAX_SINCE_SECONDS` (bad values: the default)."""
    try:
        value = float(since_seconds)
    except (TypeError, ValueError):
        value = 300.0
    if not math.isfinite(value):
        value = float(MAX_SINCE_SECONDS) if value > 0 else 300.0
    return int(min(max(value, 1.0), MAX_SINCE_SECONDS))


def _entry(line: str) -> dict[str, Any] | None:
    """One ``journalctl --output=json`` record as an entry; None for a line that is not one."""
    try:
        record = json_loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    message = record.get("MESSAGE")
    if isinstance(message, list):  # binary messages come as byte arrays
        message = bytes(b for b in message if isinstance(b, int) and 0 <= b < 256).decode("utf-8", "replace")
    if not isinstance(message, str):
        return None
    priority = record.get("PRIORITY")
    return {
        "timestamp": _timestamp(record.get("__REALTIME_TIMESTAMP")),
        "unit": str(record.get("_SYSTEMD_UNIT") or record.get("UNIT") or ""),
        "priority": int(priority) if isinstance(priority, str) and priority.isdigit() else None,
        "message": redact(message[:MAX_MESSAGE_CHARS]),
    }


def _timestamp(value: Any) -> str | None:
    """The journal's microseconds since the epoch as an ISO timestamp (UTC)."""
    if not isinstance(value, str) or not value.isdigit():
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1_000_000, UTC).isoformat()
    except (OverflowError, OSError, ValueError):
        return None
