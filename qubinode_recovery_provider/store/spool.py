"""The spool: writes the ledger could not make, kept on local disk until the database is back.

One JSON-lines file per process (``<host>-<pid>.jsonl``) in the spool directory. Every line is one
:class:`SpoolEvent` with a uuid; appends take an exclusive ``flock`` on the file and are ``fsync``-ed
before the call returns. :meth:`Spool.replay` takes the same lock, applies each event in order through
a callback, and removes the file once everything in it is in the database (or rewrites it atomically
with what is left when the database goes away again). A line that cannot be read or applied is never
dropped: it is copied verbatim to ``<file>.rejected`` and counted.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from qubinode_recovery_provider.files import FILE_MODE, make_private, private_dir
from qubinode_recovery_provider.jsontext import loads as json_loads

log = logging.getLogger(__name__)

SPOOL_SUFFIX = ".jsonl"
REJECTED_SUFFIX = ".rejected"
FORMAT_VERSION = 1


class SpoolStop(Exception):
    """Raised by a replay callback: the database is unavailable again, keep the rest for later."""


class SpoolReject(Exception):
    """Raised by a replay callback: this event can never be applied; set it aside."""


@dataclass(frozen=True)
class SpoolEvent:
    """One buffered write: the ledger operation ``op`` with its JSON ``payload``."""

    op: str
    payload: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    spooled_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_line(self) -> str:
        record = {
            "v": FORMAT_VERSION,
            "id": self.id,
            "op": self.op,
            "at": self.spooled_at,
            "payload": self.payload,
        }
        return json.dumps(record, separators=(",", ":"), default=str) + "\n"

    @classmethod
    def from_line(cls, line: str) -> SpoolEvent:
        """Parse one spool line.

        :raises SpoolReject: when the line is not a well-formed event.
        """
        try:
            record = json_loads(line)
        except json.JSONDecodeError as exc:
            raise SpoolReject(f"not JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise SpoolReject("not a JSON object")
        event_id, op, payload = record.get("id"), record.get("op"), record.get("payload")
        if not isinstance(event_id, str) or not isinstance(op, str) or not isinstance(payload, dict):
            raise SpoolReject("missing id, op or payload")
        return cls(op=op, payload=payload, id=event_id, spooled_at=str(record.get("at", "")))


@dataclass
class ReplayResult:
    """What one :meth:`Spool.replay` did."""

    applied: int = 0
    rejected: int = 0
    remaining: int = 0
    stopped: bool = False


class Spool:
    """The spool directory of one ledger."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / f"{_safe_host()}-{os.getpid()}{SPOOL_SUFFIX}"

    def append(self, event: SpoolEvent) -> None:
        """Append ``event`` durably (flock, write, fsync).

        :raises OSError: when the spool directory is not writable.
        """
        self.path = self.directory / f"{_safe_host()}-{os.getpid()}{SPOOL_SUFFIX}"  # after fork
        private_dir(self.directory)
        data = event.to_line().encode("utf-8")
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                if os.fstat(fd).st_nlink == 0:
                    continue  # a replay removed or replaced the file while we waited: reopen
                _write_all(fd, _newline_guard(fd) + data)
                os.fsync(fd)
                return
            finally:
                os.close(fd)

    def files(self) -> list[Path]:
        """Spool files waiting for replay, oldest first."""
        try:
            found = [p for p in self.directory.iterdir() if p.name.endswith(SPOOL_SUFFIX) and p.is_file()]
        except FileNotFoundError:
            return []
        return sorted(found, key=_mtime)

    def has_pending(self) -> bool:
        return bool(self.files())

    def pending_events(self) -> int:
        """Number of non-blank lines waiting in all spool files."""
        total = 0
        for path in self.files():
            with contextlib.suppress(FileNotFoundError), path.open("rb") as fh:
                total += sum(1 for line in fh if line.strip())
        return total

    def rejected_events(self) -> int:
        """Number of lines set aside in ``.rejected`` files."""
        total = 0
        for path in self.directory.glob(f"*{REJECTED_SUFFIX}"):
            with contextlib.suppress(FileNotFoundError), path.open("rb") as fh:
                total += sum(1 for line in fh if line.strip())
        return total

    def replay(self, apply: Callable[[SpoolEvent], None]) -> ReplayResult:
        """Feed every spooled event to ``apply`` (which raises :class:`SpoolStop` or
        :class:`SpoolReject`), file by file, oldest first."""
        total = ReplayResult()
        for path in self.files():
            result = _replay_file(path, apply)
            total.applied += result.applied
            total.rejected += result.rejected
            total.remaining += result.remaining
            if result.stopped:
                total.stopped = True
                break
        return total


def _safe_host() -> str:
    host = socket.gethostname() or "localhost"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in host)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _newline_guard(fd: int) -> bytes:
    """A newline when the file ends in a torn line (a writer died mid-append), so that the next event
    starts on a line of its own and only the torn one is rejected."""
    size = os.fstat(fd).st_size
    if size == 0:
        return b""
    return b"" if os.pread(fd, 1, size - 1) == b"\n" else b"\n"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[IO[bytes] | None]:
    """Open ``path`` and hold its exclusive lock; yields None when the file is gone."""
    try:
        fh = path.open("rb")
    except FileNotFoundError:
        yield None
        return
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        yield None if os.fstat(fh.fileno()).st_nlink == 0 else fh


def _replay_file(path: Path, apply: Callable[[SpoolEvent], None]) -> ReplayResult:
    result = ReplayResult()
    with _locked(path) as fh:
        if fh is None:
            return result
        lines = fh.read().decode("utf-8", errors="replace").splitlines(keepends=True)
        rest = _replay_lines(path, lines, apply, result)
        if rest:
            result.remaining = sum(1 for line in rest if line.strip())
            _rewrite(path, rest)
        else:
            path.unlink()
    return result


def _replay_lines(
    path: Path, lines: list[str], apply: Callable[[SpoolEvent], None], result: ReplayResult
) -> list[str]:
    """Apply ``lines`` in order; returns the lines still to replay when :class:`SpoolStop` is raised."""
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            apply(SpoolEvent.from_line(line))
        except SpoolStop:
            result.stopped = True
            return lines[index:]
        except SpoolReject as exc:
            _reject(path, line, str(exc))
            result.rejected += 1
        else:
            result.applied += 1
    return []


def _reject(path: Path, line: str, reason: str) -> None:
    rejected = path.with_name(path.name + REJECTED_SUFFIX)
    log.error("ledger spool: set aside an event of %s in %s: %s", path.name, rejected.name, reason)
    fd = os.open(rejected, os.O_WRONLY | os.O_APPEND | os.O_CREAT, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(line if line.endswith("\n") else line + "\n")
        out.flush()
        os.fsync(out.fileno())
    make_private(rejected)


def _rewrite(path: Path, lines: list[str]) -> None:
    """Atomically replace ``path`` by ``lines`` (writers blocked on the old file reopen the new one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.writelines(line if line.endswith("\n") else line + "\n" for line in lines)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
