"""The notifier's record of the recovery runs it asked for, and of those it could not start yet.

One small JSON file per incident fingerprint in ``<state_dir>/recovery_triggers/``, written atomically
(temporary file + rename), so a worker killed mid-write leaves the old record or the new one, never half
of one. A record is written as ``pending`` *before* the run is requested and marked ``sent`` after,
with a fixed ``run_id``: a replay of a request that did go through gets "already exists" back, so each
incident starts at most one run per request. Plain Python, no Airflow.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from qubinode_recovery_provider import config
from qubinode_recovery_provider.categories import utcnow
from qubinode_recovery_provider.files import FILE_MODE, private_dir, write_private
from qubinode_recovery_provider.jsontext import loads as json_loads

PENDING = "pending"
SENT = "sent"
FAILED = "failed"
#: After this many failed deliveries a pending request is given up (``failed``).
MAX_DELIVERY_ATTEMPTS = 20
DIRECTORY_NAME = "recovery_triggers"
PENDING_MARKERS = "pending"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass
class TriggerRecord:
    """One requested recovery run.

    :param fingerprint: the incident.
    :param dag_id: the recovery DAG.
    :param run_id: the run id asked for (fixed, so a replay is idempotent).
    :param conf: the run's conf (already redacted).
    :param status: ``pending``, ``sent`` or ``failed``.
    :param created_at: when it was first requested (ISO 8601, UTC).
    :param updated_at: when the record last changed.
    :param attempts: delivery attempts so far.
    :param via: ``api`` or ``task_sdk`` once delivered.
    :param last_error: why the last delivery failed.
    """

    fingerprint: str
    dag_id: str
    run_id: str
    conf: dict[str, Any]
    status: str = PENDING
    created_at: str = field(default_factory=lambda: utcnow().isoformat())
    updated_at: str = field(default_factory=lambda: utcnow().isoformat())
    attempts: int = 0
    via: str | None = None
    last_error: str = ""

    @property
    def created(self) -> datetime:
        return datetime.fromisoformat(self.created_at)

    def age(self, now: datetime | None = None) -> timedelta:
        """How long ago the run was first requested."""
        return (now or utcnow()) - self.created

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, default=str)

    @classmethod
    def from_json(cls, text: str) -> TriggerRecord:
        data = json_loads(text)
        if not isinstance(data, dict):
            raise ValueError("a trigger record is a JSON object")
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


class TriggerOutbox:
    """Records of requested recovery runs, one file per fingerprint.

    :param directory: where the records live (created on first write).
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @classmethod
    def from_config(cls) -> TriggerOutbox:
        """The outbox in ``<[qubinode_recovery] state_dir>/recovery_triggers``."""
        return cls(config.state_dir() / DIRECTORY_NAME)

    def __repr__(self) -> str:
        return f"TriggerOutbox({str(self.directory)!r})"

    def path_for(self, fingerprint: str) -> Path:
        """The file of one fingerprint."""
        return self.directory / f"{_UNSAFE.sub('_', fingerprint)[:200]}.json"

    def get(self, fingerprint: str) -> TriggerRecord | None:
        """The record of ``fingerprint``, ``None`` when there is none (or it is unreadable)."""
        return _read(self.path_for(fingerprint))

    @property
    def pending_directory(self) -> Path:
        """Empty marker files, one per pending record, so finding pending work reads no records."""
        return self.directory / PENDING_MARKERS

    def put(self, record: TriggerRecord) -> None:
        """Write a record atomically (replacing the fingerprint's previous one).

        :raises OSError: when the directory is not writable.
        """
        record.updated_at = utcnow().isoformat()
        private_dir(self.directory)
        private_dir(self.pending_directory)
        marker = self.pending_directory / self.path_for(record.fingerprint).name
        if record.status == PENDING:
            marker.touch(mode=FILE_MODE)
        write_private(self.path_for(record.fingerprint), record.to_json())
        if record.status != PENDING:
            marker.unlink(missing_ok=True)

    def records(self) -> list[TriggerRecord]:
        """Every readable record, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [_read(p) for p in self.directory.glob("*.json") if not p.name.startswith(".tmp-")]
        return sorted((r for r in found if r is not None), key=lambda r: r.created_at)

    def pending(self, limit: int | None = None) -> list[TriggerRecord]:
        """Requests not delivered yet, oldest first.

        :param limit: the most returned.
        """
        if not self.pending_directory.is_dir():
            return []
        found = [_read(self.directory / marker.name) for marker in self.pending_directory.iterdir()]
        waiting = [r for r in found if r is not None and r.status == PENDING]
        waiting.sort(key=lambda r: r.created_at)
        return waiting if limit is None else waiting[: max(0, limit)]

    def prune(self, older_than: timedelta) -> int:
        """Delete sent and failed records last changed more than ``older_than`` ago; returns how many.

        :param older_than: the age beyond which finished records go.
        """
        cutoff = utcnow() - older_than
        removed = 0
        for record in self.records():
            if record.status != PENDING and datetime.fromisoformat(record.updated_at) < cutoff:
                self.path_for(record.fingerprint).unlink(missing_ok=True)
                removed += 1
        return removed


def _read(path: Path) -> TriggerRecord | None:
    try:
        return TriggerRecord.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        return None


__all__ = ["FAILED", "MAX_DELIVERY_ATTEMPTS", "PENDING", "SENT", "TriggerOutbox", "TriggerRecord"]
