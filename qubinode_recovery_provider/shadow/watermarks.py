"""Incremental scans: where each source stopped, kept in the ledger, so a scan reads only what is new.

One watermark per source (``qr_scan_watermarks``, keyed by the source's :attr:`watermark_key`):

- **runs** (REST API or a runs file): the latest ``end_date`` read and the runs that ended in the
  :data:`OVERLAP` before it. The next scan reads the runs that ended from that moment minus the overlap
  (runs committed late), whatever its window says, so a paused or failed scan leaves no gap (at most
  :data:`MAX_CATCH_UP` back), and checks only those it has not checked before.
- **lineage file**: checkpoints ``(scan time, inode, offset)``. The events of the runs a scan checks
  were written after the earliest of their start dates, so the file is read from the offset it had at
  the last checkpoint before that moment (minus :data:`OVERLAP`), to its end: what is new plus a bounded
  overlap, and late START/COMPLETE pairs of a long run are still found. A rotated file (new inode) is
  followed into the sibling that kept the old inode (``events.jsonl.1``), read from the old offset; a
  file truncated in place (``copytruncate``) is read from its start, with its siblings written since.
- **Marquez**: the last event time seen per namespace. The next scan asks Marquez's events API only for
  the events after the earlier of that time minus :data:`OVERLAP` and the earliest start of the checked
  runs minus :data:`OVERLAP` (``GET /api/v1/events/lineage?after=...``); without a watermark (the first
  scan) it walks the jobs' runs back to the runs' start instead of the window minus a day.

``--full`` (or ``full=True``) reads everything in the window and stores fresh watermarks. Watermarks are
stored by :meth:`IncrementalScan.commit`, after the findings are recorded, so a scan that dies midway is
read again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from qubinode_recovery_provider.shadow.runs import parse_time

if TYPE_CHECKING:
    from qubinode_recovery_provider.shadow.records import RunRecord

OVERLAP = timedelta(minutes=10)
MAX_CATCH_UP = timedelta(days=7)
#: Checkpoints kept per lineage file (one per scan; 15-minute scans keep about five days).
MAX_CHECKPOINTS = 500
log = logging.getLogger(__name__)


class WatermarkStore(Protocol):
    """Where watermarks live (the :class:`~qubinode_recovery_provider.store.Ledger`)."""

    def watermark(self, source: str) -> dict[str, Any] | None: ...

    def set_watermark(self, source: str, position: dict[str, Any]) -> None: ...


@dataclass
class IncrementalScan:
    """The watermarks of one scan: read before the sources, staged while reading, stored on commit.

    :param store: the ledger
    :param full: ignore the stored watermarks (read the whole window) and store fresh ones
    :param overlap: how far before a watermark a scan reads again (late runs and events)
    :param now: the scan's clock (default: the current time)
    """

    store: WatermarkStore
    full: bool = False
    overlap: timedelta = OVERLAP
    now: datetime | None = None
    notes: list[str] = field(default_factory=list)
    staged: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.now = self.now or datetime.now(UTC)

    def _stored(self, key: str | None) -> dict[str, Any] | None:
        if key is None or self.full:
            return None
        try:
            return self.store.watermark(key)
        except Exception as exc:  # an unreadable ledger means a full read, never a failed scan
            self.notes.append(f"watermark of {key} unreadable ({type(exc).__name__}): full read")
            return None

    def has_checkpoints(self, key: str | None) -> bool:
        """Whether the ledger holds lineage checkpoints for ``key`` (an incremental read is likely)."""
        if key is None or self.full:
            return False
        try:
            stored = self.store.watermark(key)
        except Exception:  # noted by the read that follows
            return False
        return bool(stored and stored.get("checkpoints"))

    # --- runs ---------------------------------------------------------------------------------------

    def runs_since(self, source: Any, since: datetime | None) -> datetime | None:
        """Where the runs of ``source`` are read from: its watermark minus the overlap, else ``since``."""
        stored = self._stored(getattr(source, "watermark_key", None))
        ended = parse_time(stored.get("end_date")) if stored else None
        if ended is None:
            return since
        assert self.now is not None
        start = max(ended - self.overlap, self.now - MAX_CATCH_UP)
        self.notes.append(f"runs: incremental from {start.isoformat()} (watermark {ended.isoformat()})")
        return start

    def new_runs(self, source: Any, runs: list[RunRecord], since: datetime | None) -> list[RunRecord]:
        """Stage the runs watermark; return the runs not checked by the previous scan (those re-read in
        the overlap and checked before are dropped, so their old lineage need not be read again)."""
        key = getattr(source, "watermark_key", None)
        if key is None:
            return runs
        stored = self._stored(key) or {}
        checked = {tuple(k) for k in stored.get("checked") or ()}
        fresh = [r for r in runs if r.key not in checked]
        ends = [e for e in (parse_time(r.end_date) for r in runs) if e is not None]
        previous = parse_time(stored.get("end_date"))
        latest = max([*ends, *([previous] if previous else [])], default=since)
        if latest is not None:
            recent = [r.key for r in runs if (parse_time(r.end_date) or latest) >= latest - self.overlap]
            keep = [list(k) for k in checked if k not in set(recent)] if previous == latest else []
            self.staged[key] = {
                "end_date": latest.isoformat(),
                "checked": [*keep, *map(list, recent)][-5000:],
            }
        if len(fresh) < len(runs):
            self.notes.append(f"runs: {len(runs) - len(fresh)} runs in the overlap were checked before")
        return fresh

    # --- lineage -----------------------------------------------------------------------------------

    def lineage_from(self, runs: Sequence[RunRecord], since: datetime | None) -> datetime | None:
        """The earliest moment whose events the checked runs need: their earliest start minus the overlap."""
        if not runs:
            return since
        starts = [s for s in (parse_time(r.start_date) for r in runs) if s is not None]
        if len(starts) < len(runs):  # a run without a start date: as far back as the window goes
            if since is None:
                return None
            starts.append(since)
        return min(starts) - self.overlap

    def resume_lineage(self, source: Any, runs: Sequence[RunRecord], since: datetime | None) -> None:
        """Tell ``source`` to read only what the checked runs need (sources without the ability read all)."""
        resume = getattr(source, "resume", None)
        key = getattr(source, "watermark_key", None)
        if resume is None or key is None:
            return
        resume(self._stored(key), self.lineage_from(runs, since), self.now)

    def stage_lineage(self, source: Any) -> None:
        position = getattr(source, "position", None)
        key = getattr(source, "watermark_key", None)
        if position is None or key is None:
            return
        value = position()
        if value is not None:
            self.staged[key] = value
        note = getattr(source, "resume_note", None)
        if note:
            self.notes.append(note)

    # --- storing -----------------------------------------------------------------------------------

    def commit(self) -> int:
        """Store the staged watermarks (after the findings are recorded); how many were stored."""
        for key, position in self.staged.items():
            self.store.set_watermark(key, position)
        stored = len(self.staged)
        self.staged = {}
        return stored


def prune_checkpoints(checkpoints: list[list[Any]], now: datetime) -> list[list[Any]]:
    """Checkpoints newer than :data:`MAX_CATCH_UP`, plus the newest older one, at most
    :data:`MAX_CHECKPOINTS`."""
    horizon = now - MAX_CATCH_UP
    recent = [c for c in checkpoints if (parse_time(c[0]) or horizon) > horizon]
    older = [c for c in checkpoints if c not in recent]
    return ([older[-1]] if older else []) + recent[-MAX_CHECKPOINTS:]


def checkpoint_before(checkpoints: list[list[Any]], moment: datetime | None) -> list[Any] | None:
    """The newest checkpoint taken at or before ``moment`` (the newest of all when ``moment`` is None)."""
    if not checkpoints:
        return None
    if moment is None:
        return checkpoints[-1]
    chosen = None
    for checkpoint in checkpoints:
        taken = parse_time(checkpoint[0])
        if taken is not None and taken <= moment:
            chosen = checkpoint
    return chosen
