"""Lineage from the OpenLineage file transport: JSON lines, streamed, of any size, rotated or not.

``[openlineage] transport = {"type": "file", "log_file_path": P, "append": true}`` appends one event per
line to ``P``. The source reads, oldest first:

- ``P`` itself and its rotated siblings ``P.1``, ``P.2``, ... (``.gz`` compressed ones too), as
  logrotate leaves them;
- ``P-<timestamp>.json``, the one-event files the transport writes with ``append: false`` (pretty
  printed in its debug mode);
- every ``*.json``, ``*.jsonl`` and ``*.gz`` file when ``P`` is a directory, or the matches when ``P``
  is a glob pattern.

Files are streamed line by line, so memory does not grow with their size. A line that is not a JSON
event is counted and skipped; the first warnings name the file and the line number. A missing file
makes the source unavailable (a warning), never an exception.

With ``workers`` > 1 a large uncompressed file is cut at line boundaries into that many byte ranges,
read side by side by forked worker processes (the calling process reads the last range), and the
partial indexes are merged. Fork only from a process without other threads (the CLI does this before
it starts the libvirt listings); the default is one worker. A scan without a window start may fork the
workers before it has read the runs (:meth:`FileLineageSource.start` with ``wanted=None``, then
:meth:`PendingRead.narrow`): they read while the runs are read, keep every run of their range, and the
runs outside the scan are dropped when their partial indexes are merged. Their ranges are then larger
than the calling process's, which reads the runs first.
"""

from __future__ import annotations

import gc
import glob
import gzip
import itertools
import logging
import marshal
import os
import pickle
import re
import signal
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from qubinode_recovery_provider.shadow.lineage import LineageIndex, RunKey
from qubinode_recovery_provider.shadow.olevents import EventError, add_event, decode_event
from qubinode_recovery_provider.shadow.runs import parse_time
from qubinode_recovery_provider.shadow.watermarks import checkpoint_before, prune_checkpoints

_ROTATED = re.compile(r"^\.(\d+)(\.gz)?$|^\.gz$")
_ONE_EVENT = re.compile(r"^-\d{8}-\d{6}\.\d+.*\.json$|^-\d{6}T\d{6}\.\d+.*\.json$")
_BUFFER = 1 << 20
_DOCUMENT_LIMIT = 4 << 20  # a ``.json`` file up to this size may hold one pretty-printed event
PARALLEL_MIN_BYTES = 32 << 20  # smaller files are not worth a worker process
_MAX_BAD_LINES = 20
#: The calling process's share of a file whose workers start before the runs are read.
_EARLY_SHARE = 0.25
log = logging.getLogger(__name__)

# The wanted runs, inherited by forked workers instead of being pickled to each of them.
_FORK_WANTED: Collection[RunKey] | None = None


def auto_workers() -> int:
    """A sensible number of lineage workers for this machine (at most 4)."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))


@dataclass
class _Chunk:
    """What reading one byte range of one file gave: a partial index and its bad lines."""

    index: LineageIndex | None
    lines: int = 0
    bad_count: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line within the range, reason)
    dumped: tuple[Any, ...] | None = None  # the index, as a worker process sends it back

    def to_bytes(self) -> bytes:
        """The chunk as a worker sends it: :mod:`marshal` (plain tuples, dicts and strings, about three
        times faster to write than pickle); the rare held records (:class:`LineageRecord`) are pickled."""
        assert self.index is not None
        counts, ol_runs, orphans, runs = self.index.dump()
        held = pickle.dumps(orphans, protocol=pickle.HIGHEST_PROTOCOL) if orphans else b""
        return marshal.dumps((self.lines, self.bad_count, self.bad, counts, ol_runs, held, runs))

    @classmethod
    def from_bytes(cls, data: bytes) -> _Chunk:
        """The chunk :meth:`to_bytes` wrote (the index left dumped, for :meth:`LineageIndex.merge_dump`)."""
        lines, bad_count, bad, counts, ol_runs, held, runs = marshal.loads(data)  # noqa: S302 - our child's
        orphans = pickle.loads(held) if held else {}  # noqa: S301 - written by our own forked child
        return cls(None, lines, bad_count, [tuple(b) for b in bad], (counts, ol_runs, orphans, runs))


class FileLineageSource:
    """The OpenLineage file transport's output as a lineage source.

    :param path: the transport's ``log_file_path``, a directory of event files, or a glob pattern
    :param lookback: files last written more than this long before the scan window are skipped
    :param workers: processes reading one large file side by side (1: this process only)
    """

    name = "lineage file"

    def __init__(self, path: str | Path, lookback: timedelta = timedelta(days=1), workers: int = 1) -> None:
        self.path = str(path)
        self.lookback = lookback
        self.workers = max(1, workers)
        self._resume: Resume | None = None
        self._checkpoint: list[Any] | None = None
        self.resume_note: str | None = None

    @property
    def watermark_key(self) -> str:
        """The key of this file's watermark in the ledger."""
        return f"lineage-file:{os.path.abspath(self.path)}"

    def resume(
        self, position: dict[str, Any] | None, from_time: datetime | None, now: datetime | None
    ) -> None:
        """Read only what was written since the checkpoint before ``from_time`` (see
        :mod:`~qubinode_recovery_provider.shadow.watermarks`); a directory or a glob is read whole."""
        self._resume = Resume(
            list((position or {}).get("checkpoints") or []), from_time, now or datetime.now(UTC)
        )

    def position(self) -> dict[str, Any] | None:
        """The watermark after a read: the previous checkpoints and this scan's."""
        if self._resume is None or self._checkpoint is None:
            return None
        checkpoints = [*self._resume.checkpoints, self._checkpoint]
        checkpoints = prune_checkpoints(checkpoints, self._resume.now)
        inode, offset = self._checkpoint[1], self._checkpoint[2]
        return {"inode": inode, "offset": offset, "checkpoints": checkpoints}

    def __repr__(self) -> str:
        return f"FileLineageSource({self.path!r})"

    def files(self) -> list[Path]:
        """The event files this source reads, oldest first."""
        base = Path(self.path)
        if base.is_dir():
            found = [p for p in base.iterdir() if p.is_file() and _is_event_file(p.name)]
        elif glob.has_magic(self.path):
            found = [Path(p) for p in glob.glob(self.path) if Path(p).is_file()]
        else:
            found = [base] if base.is_file() else []
            found += _siblings(base)
        return sorted(set(found), key=_mtime)

    def read(self, wanted: Collection[RunKey] | None, since: datetime | None = None) -> LineageIndex:
        return self.start(wanted, since).result()

    def start(
        self,
        wanted: Collection[RunKey] | None,
        since: datetime | None = None,
        early: bool = False,
        fork: bool = True,
    ) -> PendingRead:
        """Begin reading: with ``workers`` > 1 the worker processes are forked now (call this before
        starting threads); :meth:`PendingRead.result` reads the rest here and merges.

        :param early: the runs are not read yet (``wanted`` None): the workers keep every run and take
            the larger share of the file; call :meth:`PendingRead.narrow` with the runs before the result
        :param fork: False: read in this process only (threads already run)
        """
        return PendingRead(self, wanted, since, early, fork)

    def _read_document(self, path: Path, index: LineageIndex) -> None:
        """A one-event file (possibly pretty printed); several lines of JSON are read as lines."""
        with _open(path) as handle:
            data = handle.read()
        try:
            record = decode_event(data)
        except EventError:
            chunk = _read_lines(iter(data.splitlines(keepends=True)), LineageIndex(index.wanted))
            _merge_chunks(path, [chunk], index)
            return
        if record is not None:
            index.add(record)


@dataclass
class Resume:
    """An incremental read: the stored checkpoints, the earliest event time needed, the scan's clock."""

    checkpoints: list[list[Any]]
    from_time: datetime | None
    now: datetime


class PendingRead:
    """A lineage read under way: worker processes for the ranges of large files already run."""

    def __init__(
        self,
        source: FileLineageSource,
        wanted: Collection[RunKey] | None,
        since: datetime | None,
        early: bool = False,
        fork: bool = True,
    ) -> None:
        self.source = source
        self.index = LineageIndex(wanted, name=source.name)
        self.all_files = source.files()
        cutoff = (since - source.lookback).timestamp() if since is not None else None
        self.files = [p for p in self.all_files if cutoff is None or _mtime(p) >= cutoff]
        self.offsets: dict[Path, int] = {}
        if source._resume is not None:
            self._plan_resume(source._resume)
        self.forked: dict[Path, _Forked] = {}
        self._idle: Callable[[], None] | None = None
        if source.workers > 1 and fork:
            try:
                for path in self.files:
                    size = _size(path)
                    if (
                        path.suffix not in (".gz", ".json")
                        and size >= PARALLEL_MIN_BYTES
                        and path not in self.offsets
                    ):
                        share = _EARLY_SHARE if early else None
                        self.forked[path] = _Forked.start(path, size, source.workers, wanted, share)
            except BaseException:  # (no caller holds this read yet to cancel it)
                self.cancel()
                raise

    def _plan_resume(self, resume: Resume) -> None:
        """Choose the files and offsets of an incremental read; record this scan's checkpoint."""
        source = self.source
        main = Path(source.path)
        try:
            stat = main.stat()
        except OSError:
            return  # a directory, a glob or a missing file: read as without a watermark
        if not main.is_file():
            return
        source._checkpoint = [resume.now.isoformat(), stat.st_ino, stat.st_size]
        chosen = checkpoint_before(resume.checkpoints, resume.from_time)
        if chosen is None:
            source.resume_note = f"{source.name}: no checkpoint before the runs' start: read the window"
            return
        taken, inode, offset = parse_time(chosen[0]), int(chosen[1]), int(chosen[2])
        siblings = [p for p in self.all_files if p != main]
        since_checkpoint = [p for p in siblings if taken is None or _mtime(p) >= taken.timestamp()]
        if inode == stat.st_ino and stat.st_size >= offset:
            self.files, self.offsets = [main], {main: offset}
            source.resume_note = f"{source.name}: read from byte {offset} of {stat.st_size} (incremental)"
        elif inode == stat.st_ino:  # truncated in place: its old content went to a sibling (copytruncate)
            self.files = [*since_checkpoint, main]
            self.offsets = {p: offset for p in since_checkpoint if p.suffix != ".gz" and _size(p) >= offset}
            source.resume_note = f"{source.name}: truncated since the last scan: read it whole and its copies"
        else:  # rotated: the old inode lives on in a sibling
            moved = [p for p in siblings if _inode(p) == inode]
            self.files = [*dict.fromkeys([*moved, *since_checkpoint]), main]
            self.offsets = {p: offset for p in moved if _size(p) >= offset}
            source.resume_note = f"{source.name}: rotated since the last scan: read {len(self.files)} files"

    def narrow(self, wanted: Collection[RunKey] | None) -> None:
        """The runs to keep, once known (after an early :meth:`FileLineageSource.start`)."""
        self.index = LineageIndex(wanted, name=self.source.name)
        for forked in self.forked.values():
            forked.wanted = wanted

    def cancel(self) -> None:
        """Stop the workers of a read whose result is no longer wanted (the runs could not be read)."""
        for forked in self.forked.values():
            forked.cancel()
        self.forked.clear()

    def result(self, idle: Callable[[], None] | None = None) -> LineageIndex:
        """Read the rest here, collect the workers' partial indexes and merge.

        :param idle: work the caller needs later, run once this process has read its own range of a
            file its workers share and before it waits for their results (never without workers)
        """
        self._idle = idle
        index, report = self.index, self.index.report
        if not self.all_files:
            report.available = False
            report.warn(f"{self.source.name}: {self.source.path} does not exist or holds no event files")
            return index.finish()
        try:
            for path in self.files:
                try:
                    self._read_file(path)
                except (OSError, EOFError) as exc:
                    report.warn(f"{self.source.name}: cannot read {path}: {exc}")
        except BaseException:  # (an interrupt, or ``idle`` failed: no worker outlives the read)
            self.cancel()
            raise
        if report.skipped:
            report.warn(f"{self.source.name}: {report.skipped} malformed lines skipped")
        return index.finish()

    def _read_file(self, path: Path) -> None:
        index = self.index
        if self.offsets.get(path):
            begin = _line_start(path, self.offsets[path])  # a line being written at the checkpoint
            chunk = _read_range(str(path), begin, _size(path), index.wanted)
            _merge_chunks(path, [chunk], index)
            return
        if path in self.forked:
            idle, self._idle = self._idle, None  # (once)
            _merge_chunks(path, self.forked.pop(path).finish(idle), index)
            return
        if path.suffix == ".json" and _size(path) <= _DOCUMENT_LIMIT:
            self.source._read_document(path, index)
            return
        with _open(path) as handle:
            chunk = _read_lines(handle, LineageIndex(index.wanted, index.report.name))
        _merge_chunks(path, [chunk], index)


def _read_lines(lines: Iterator[bytes] | IO[bytes], index: LineageIndex, end: int | None = None) -> _Chunk:
    """Decode lines into ``index``; with ``end``, stop at that byte offset (``lines`` a file)."""
    chunk = _Chunk(index)
    if end is not None:  # (a file: stop at the first line that ends at or after ``end``)
        lines = _until(lines, lines.tell(), end)  # type: ignore[union-attr]
    take, count = add_event, 0
    for count, line in enumerate(lines, start=1):
        if line.isspace():  # (no copy of the line, unlike strip)
            continue
        try:
            take(line, index)  # (decode_event, then index.add, fused)
        except EventError as exc:
            chunk.bad_count += 1
            if len(chunk.bad) < _MAX_BAD_LINES:
                chunk.bad.append((count, str(exc)))
    chunk.lines = count
    return chunk


def _until(handle: Iterator[bytes], position: int, end: int) -> Iterator[bytes]:
    """The lines of ``handle`` from ``position`` up to the one that reaches byte ``end``."""
    for line in handle:
        position += len(line)
        yield line
        if position >= end:
            return


def _read_range(path: str, begin: int, end: int, wanted: Collection[RunKey] | None) -> _Chunk:
    """Read the lines starting in ``[begin, end)`` of ``path``."""
    if begin >= end:
        return _Chunk(LineageIndex(wanted))
    with open(path, "rb", buffering=_BUFFER) as handle:
        handle.seek(begin)
        return _read_lines(handle, LineageIndex(wanted), end)


def _boundaries(path: Path, size: int, parts: int, last_share: float | None = None) -> list[int]:
    """Byte offsets cutting ``path`` into ``parts`` ranges that start at line starts (the last one
    ``last_share`` of the file, the others equal)."""
    last = last_share if last_share is not None and parts > 1 else 1 / parts
    cuts = [0]
    with open(path, "rb") as handle:
        for k in range(1, parts):
            handle.seek(max(cuts[-1], int(size * (1 - last) * k / (parts - 1))))
            handle.readline()
            cuts.append(min(size, handle.tell()))
    cuts.append(size)
    return cuts


@dataclass
class _Forked:
    """One large file cut into ranges: a forked process per range but the last, which the parent
    reads when it gets to the file. Results come back through pipes as plain tuples."""

    path: Path
    ranges: list[tuple[int, int]]
    wanted: Collection[RunKey] | None
    children: list[tuple[Any, Any]]  # (process, receiving end of its pipe)

    @classmethod
    def start(
        cls,
        path: Path,
        size: int,
        workers: int,
        wanted: Collection[RunKey] | None,
        parent_share: float | None = None,
    ) -> _Forked:
        """Fork a worker per range but the last; ``parent_share``: the fraction of the file left to the
        calling process (default: an equal share)."""
        import multiprocessing

        global _FORK_WANTED
        ranges = list(itertools.pairwise(_boundaries(path, size, workers, parent_share)))
        children: list[tuple[Any, Any]] = []
        _FORK_WANTED = wanted  # inherited by the children, not pickled
        try:
            context = multiprocessing.get_context("fork")
            for begin, end in ranges[:-1]:
                receive, send = context.Pipe(duplex=False)
                readers = [*(r for _, r in children), receive]  # (the child closes its copies)
                process = context.Process(
                    target=_child, args=(send, readers, str(path), begin, end), daemon=True
                )
                # SIGINT blocked across the fork: the child takes none before it ignores it, and an
                # interrupt of this process comes once the child is in ``children`` (to be reaped)
                blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
                try:
                    process.start()
                    children.append((process, receive))
                    send.close()
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        except (OSError, ValueError) as exc:  # no fork here: the parent reads the other ranges itself
            log.warning("lineage workers unavailable (%s); reading %s in one process", exc, path)
        except BaseException:  # (an interrupt between two forks: the ones started are reaped)
            cls(path, ranges, wanted, children).cancel()
            raise
        finally:
            _FORK_WANTED = None
        return cls(path, ranges, wanted, children)

    def finish(self, idle: Callable[[], None] | None = None) -> list[_Chunk]:
        """Read the parent's ranges, run ``idle``, then collect the children's, in file order. The
        children are stopped and reaped whatever this raises (an unreadable range, ``idle``)."""
        try:
            return self._finish(idle)
        except BaseException:
            self.cancel()
            raise

    def _finish(self, idle: Callable[[], None] | None) -> list[_Chunk]:
        done = len(self.children)
        own = [_read_range(str(self.path), begin, end, self.wanted) for begin, end in self.ranges[done:]]
        if idle is not None:
            idle()
        chunks: list[_Chunk] = []
        for process, receive in self.children:
            try:
                data: bytes | None = receive.recv_bytes()
            except EOFError:  # the child died: read its range here
                data = None
            receive.close()
            process.join()  # (it ends once it has sent; on an exception above, cancel() reaps it)
            if data is None:
                chunks.append(_read_range(str(self.path), *self.ranges[len(chunks)], self.wanted))
            else:
                chunks.append(_Chunk.from_bytes(data))
        self.children = []
        return [*chunks, *own]

    def cancel(self) -> None:
        """Stop the children (SIGTERM, then SIGKILL after 10 s) and reap them."""
        for process, receive in self.children:
            receive.close()
            process.terminate()
            process.join(timeout=10)
            if process.exitcode is None:  # (a handler that ignores SIGTERM, inherited at the fork)
                process.kill()
                process.join()
        self.children = []


def _child(send: Any, readers: list[Any], path: str, begin: int, end: int) -> None:
    """Body of a forked lineage worker: read one range, send the partial index back as tuples. The
    cyclic garbage collector is off here, whoever forked: decoded events hold no cycles, and its passes
    over the growing index cost a quarter of the reading (the process ends once it has sent).

    Ctrl-C reaches the terminal's whole process group: the worker ignores it (no traceback of its own)
    and the parent, which gets it too, stops and reaps its workers. It is blocked from the fork until
    it is ignored, so one that comes during multiprocessing's start-up in the child is dropped too.

    The reading ends of the pipes (its own and its elder siblings'), inherited at the fork, are closed
    first: only the parent reads them, so a parent that died without reaping its workers (SIGKILL, a
    SIGTERM it does not handle) makes the send fail and the worker end, instead of waiting forever
    for a reader of a result larger than the pipe's buffer."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # (one pending since the fork is dropped here)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    for reader in readers:
        reader.close()
    gc.disable()
    try:
        send.send_bytes(_read_range(path, begin, end, _FORK_WANTED).to_bytes())
    except BrokenPipeError:  # the parent is gone or stopped reading: nobody wants the result
        pass
    finally:
        send.close()


def _merge_chunks(path: Path, chunks: list[_Chunk], index: LineageIndex) -> None:
    """Merge the chunks of one file in order, numbering bad lines within the whole file."""
    first_line = 0
    for chunk in chunks:
        if chunk.dumped is not None:
            index.merge_dump(chunk.dumped)
        elif chunk.index is not None:
            index.merge(chunk.index)
        index.report.skipped += chunk.bad_count
        for number, reason in chunk.bad:
            index.report.warn(f"{path}:{first_line + number}: not an OpenLineage event ({reason})")
        first_line += chunk.lines


def _is_event_file(name: str) -> bool:
    return name.endswith((".json", ".jsonl", ".gz", ".ndjson")) or bool(re.search(r"\.\d+$", name))


def _siblings(base: Path) -> Iterator[Path]:
    parent = base.parent if str(base.parent) else Path(".")
    if not parent.is_dir():
        return
    prefix = base.name
    for candidate in parent.iterdir():
        name = candidate.name
        if not name.startswith(prefix) or name == prefix or not candidate.is_file():
            continue
        rest = name[len(prefix) :]
        if _ROTATED.match(rest) or _ONE_EVENT.match(rest):
            yield candidate


def _line_start(path: Path, offset: int) -> int:
    """The start of the line that holds byte ``offset - 1`` (``offset`` itself when a line ends there)."""
    begin = max(0, offset - _BUFFER)
    with open(path, "rb") as handle:
        handle.seek(begin)
        block = handle.read(offset - begin)
    cut = block.rfind(b"\n")
    return begin + cut + 1 if cut >= 0 else begin


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _open(path: Path) -> IO[bytes]:
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb", buffering=_BUFFER)
