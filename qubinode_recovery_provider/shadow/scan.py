"""One scan end to end: read the sources, run the detector, report findings, warnings and timings.

The libvirt hosts are listed in background threads while the runs and the lineage are read, so a slow
host costs at most its timeout, not the sum. Lineage is read after the runs so that only the runs of
the scan window are kept in memory.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import re
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from qubinode_recovery_provider import config
from qubinode_recovery_provider.shadow.detector import ShadowErrorDetector
from qubinode_recovery_provider.shadow.inventory import InventoryListing, InventoryTarget

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import ShadowError
    from qubinode_recovery_provider.shadow.inference import RunInference
    from qubinode_recovery_provider.shadow.kcli import KcliCheck
    from qubinode_recovery_provider.shadow.lineage import LineageIndex, LineageSource, RunLineage
    from qubinode_recovery_provider.shadow.records import HostInventory, RunRecord, SourceReport, TaskRecord
    from qubinode_recovery_provider.shadow.watermarks import IncrementalScan

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: The most task logs one scan reads for inferred VM contracts (one REST request each).
DEFAULT_MAX_LOGS = 100


class RunsSource(Protocol):
    """Where finished runs come from: Airflow's REST API or a file of its JSON."""

    name: str
    report: SourceReport

    def fetch(self, since: datetime | None = None, until: datetime | None = None) -> list[RunRecord]: ...


def parse_duration(text: str) -> timedelta:
    """``90s``, ``15m``, ``2h``, ``1d``, ``1w``, combinations (``1h30m``); a bare number is minutes."""
    value = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return timedelta(minutes=float(value))
    parts = _DURATION.findall(value)
    if not parts or _DURATION.sub("", value).strip():
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1d)")
    return timedelta(seconds=sum(float(n) * _UNITS[u.lower()] for n, u in parts))


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """A duration back from ``now`` (``2h``) or an ISO timestamp (``2025-01-31T12:00:00Z``)."""
    try:
        return (now or datetime.now(UTC)) - parse_duration(text)
    except ValueError:
        pass
    try:
        stamp = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a duration or a timestamp: {text!r} (use e.g. 2h or 2025-01-31T12:00Z)"
        ) from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def lineage_source_from(
    lineage_file: str | None = None,
    marquez_url: str | None = None,
    marquez_namespaces: Collection[str] | None = None,
    timeout: float = 10.0,
    workers: int = 1,
) -> LineageSource | None:
    """The lineage source the arguments (else ``[qubinode_recovery]`` ``marquez_url`` /
    ``lineage_file``) choose: Marquez when a URL is set, else the file (read by ``workers``
    processes); None when neither is."""
    if lineage_file is None and marquez_url is None:
        marquez_url = config.get("marquez_url") or None
        lineage_file = config.get("lineage_file") or None
    if marquez_url:
        from qubinode_recovery_provider.shadow.marquez import MarquezLineageSource

        return MarquezLineageSource(marquez_url, namespaces=marquez_namespaces, timeout=timeout)
    if lineage_file:
        from qubinode_recovery_provider.shadow.lineage_file import FileLineageSource

        return FileLineageSource(lineage_file, workers=workers)
    return None


@dataclass
class ScanResult:
    """Everything one scan produced."""

    findings: list[ShadowError]
    warnings: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    inventories: list[HostInventory] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    explanations: dict[tuple[str, str], RunInference] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (counts, timings, warnings) without the findings."""
        return {
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "findings": len(self.findings),
            "stats": dict(sorted(self.stats.items())),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "warnings": self.warnings,
            "hosts": [
                {"host": i.host, "reachable": i.reachable, "domains": len(i.domains), "error": i.error}
                for i in self.inventories
            ],
        }


@contextlib.contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while the sources are read: they build hundreds of
    thousands of small acyclic objects, and the collector's passes over them cost more than the
    reading itself. Reference counting still frees everything; the collector resumes afterwards.

    While paused, every new object waits in the youngest generation, and the first collection after
    the pause would walk them all (0.2 s of CPU after a full scan of the benchmark estate, serial):
    they are moved to the oldest generation first (``gc.freeze`` then ``gc.unfreeze``, two list
    splices), where the collector visits them only when that generation is due. Nested pauses leave
    this to the outermost. Not when the caller had frozen objects itself (``gc.unfreeze`` would thaw
    them too: a process forked after a ``gc.freeze``, as Airflow's executors fork, would write to the
    pages it shares with its parent): the collector then just resumes."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def run_scan(
    runs_source: RunsSource,
    lineage_source: LineageSource | None = None,
    targets: Sequence[InventoryTarget] = (),
    inventories: Sequence[HostInventory] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    detector: ShadowErrorDetector | None = None,
    max_logs: int = DEFAULT_MAX_LOGS,
    incremental: IncrementalScan | None = None,
    kcli: KcliCheck | None = None,
    early_read: Any = None,
) -> ScanResult:
    """Scan the runs that ended in ``[since, until)``.

    :param targets: libvirt hosts to list now (in parallel with reading the other sources)
    :param inventories: host listings made elsewhere (the scan DAG's mapped tasks)
    :param max_logs: the most task logs read for inferred VM contracts (0: none)
    :param kcli: also run ``kcli list vm`` on the hosts that are kcli clients and compare (a
        ``kcli_check_failed`` finding when kcli fails or disagrees with libvirt)
    :param incremental: read from the sources' watermarks (the caller stores the new ones with
        ``incremental.commit()`` once the findings are recorded)
    :param early_read: the read :func:`begin_lineage_read` began (its workers forked before the
        caller did anything else, such as checking the runs file); None: the scan decides
    :raises RunsSourceError: when the runs cannot be read (nothing can be checked without them)
    """
    with no_cyclic_gc():
        return _run_scan(
            runs_source,
            lineage_source,
            targets,
            inventories,
            since,
            until,
            detector,
            max_logs,
            incremental,
            kcli,
            early_read,
        )


def begin_lineage_read(
    source: LineageSource | None, since: datetime | None, incremental: IncrementalScan | None
) -> Any:
    """Fork the lineage workers now, when :func:`run_scan` would fork them before reading the runs
    anyway (several workers, no window start, not incremental): the caller's own work before the scan
    (the CLI's check of the runs file) then runs beside them. None otherwise. Call this before any
    thread starts; pass the result as ``early_read``, or ``cancel()`` it when the scan does not run."""
    if since is not None or incremental is not None or getattr(source, "workers", 1) <= 1:
        return None
    return _start_early(source)


def _run_scan(
    runs_source: RunsSource,
    lineage_source: LineageSource | None,
    targets: Sequence[InventoryTarget],
    inventories: Sequence[HostInventory],
    since: datetime | None,
    until: datetime | None,
    detector: ShadowErrorDetector | None,
    max_logs: int,
    incremental: IncrementalScan | None,
    kcli: KcliCheck | None = None,
    early_read: Any = None,
) -> ScanResult:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    detector = detector or ShadowErrorDetector()
    forks = getattr(lineage_source, "workers", 1) > 1 and not _resumes(incremental, lineage_source)
    listing = InventoryListing(targets)
    if not forks:  # list the hosts while the runs are read (no fork may follow a thread)
        listing.start()

    if incremental is not None:
        since = incremental.runs_since(runs_source, since)
    # (no window: the workers read while the runs are read)
    early = early_read or begin_lineage_read(lineage_source, since, incremental)
    mark = time.perf_counter()
    runs = _fetch_runs(runs_source, since, until, early)
    timings["runs"] = time.perf_counter() - mark
    if incremental is not None:
        runs = incremental.new_runs(runs_source, runs, since)
        incremental.resume_lineage(lineage_source, runs, since)

    lineage: LineageIndex | None = None
    if lineage_source is not None:
        mark = time.perf_counter()
        wanted = {r.key for r in runs}
        # (while this process waits for its lineage workers, the detector parses the runs' commands)
        idle = functools.partial(detector.prepare, runs)
        lineage = _read_lineage(lineage_source, wanted, since, listing if forks else None, early, forks, idle)
        timings["lineage"] = time.perf_counter() - mark
        if incremental is not None:
            incremental.stage_lineage(lineage_source)

    if max_logs > 0 and detector.infer:
        mark = time.perf_counter()
        stats_logs = attach_logs(runs_source, runs, lineage, max_logs)
        timings["logs"] = time.perf_counter() - mark
    else:
        stats_logs = 0

    mark = time.perf_counter()
    listed = [*inventories, *listing.collect()]
    timings["inventory_wait"] = time.perf_counter() - mark

    mark = time.perf_counter()
    report = detector.detect(runs, lineage, listed)
    timings["detect"] = time.perf_counter() - mark
    if kcli is not None:
        mark = time.perf_counter()
        report.findings.extend(kcli.run(listed))
        report.stats["kcli_hosts_checked"] = len(kcli.views)
        timings["kcli"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started

    warnings = [*runs_source.report.all_warnings(), *(incremental.notes if incremental is not None else ())]
    stats: dict[str, Any] = {"runs_read": len(runs), "task_logs_read": stats_logs, **report.stats}
    if lineage is not None:
        warnings += lineage.report.all_warnings()
        stats.update(
            lineage_available=lineage.report.available,
            lineage_records=lineage.report.items,
            lineage_skipped=lineage.report.skipped,
            lineage_other_runs=lineage.other_runs,
        )
    else:
        warnings.append("no lineage source configured: lineage checks skipped")
    stats["hosts"] = len(listed)
    stats["domains_listed"] = sum(len(i.domains) for i in listed)
    if not listed:
        warnings.append("no libvirt host configured: declared VMs not verified")
    return ScanResult(
        findings=report.findings,
        warnings=[*warnings, *report.warnings],
        stats=stats,
        timings=timings,
        inventories=listed,
        since=since,
        until=until,
        explanations=report.explanations,
    )


def _fetch_runs(
    source: RunsSource, since: datetime | None, until: datetime | None, early: Any
) -> list[RunRecord]:
    """The runs; the workers of an early lineage read are stopped when they cannot be read."""
    try:
        return source.fetch(since, until)
    except BaseException:
        if early is not None:
            early.cancel()
        raise


def _resumes(incremental: IncrementalScan | None, source: LineageSource | None) -> bool:
    """Whether ``source`` will most likely read only what is new (an incremental scan, a stored
    checkpoint): a few megabytes, not worth worker processes, so the hosts are listed from the start."""
    if incremental is None or source is None:
        return False
    return bool(incremental.has_checkpoints(getattr(source, "watermark_key", None)))


def _start_early(source: LineageSource | None) -> Any:
    """Fork the source's workers before the runs are read (they keep every run until merged)."""
    start = getattr(source, "start", None)
    return start(None, None, early=True) if start is not None else None


def _read_lineage(
    source: LineageSource,
    wanted: set[tuple[str, str]],
    since: datetime | None,
    listing: InventoryListing | None,
    early: Any = None,
    forks: bool = True,
    idle: Callable[[], None] | None = None,
) -> LineageIndex:
    """Read the lineage of the ``wanted`` runs; start ``listing`` once the source's workers are forked.

    :param early: the read :func:`_start_early` began before the runs were known
    :param forks: whether the source may fork workers (not once the listing threads run)
    :param idle: work to run while this process waits for the source's workers, if it has any
    """
    if early is not None:
        early.narrow(wanted)
        return _collect(early, listing, idle)
    start = getattr(source, "start", None)
    if start is None:
        return source.read(wanted, since)
    pending = start(wanted, since) if forks else start(wanted, since, fork=False)
    # (its workers, if any, are forked before the listing threads start)
    return _collect(pending, listing, idle)


def _collect(pending: Any, listing: InventoryListing | None, idle: Callable[[], None] | None) -> LineageIndex:
    """Start ``listing``, then wait for the read's result; its workers are stopped whatever fails."""
    try:
        if listing is not None:
            listing.start()
        result: LineageIndex = pending.result(idle)
    except BaseException:
        pending.cancel()
        raise
    return result


def attach_logs(
    runs_source: RunsSource, runs: Sequence[RunRecord], lineage: LineageIndex | None, max_logs: int
) -> int:
    """Fetch the logs of successful tasks whose command names a VM tool (at most ``max_logs``), for the
    inferred contracts; a source without logs (a runs file) is skipped."""
    fetch = getattr(runs_source, "task_log", None)
    if fetch is None:
        return 0
    read = 0
    for run in runs:
        run_lineage = lineage.get(run.dag_id, run.run_id) if lineage is not None else None
        for task in run.tasks or ():
            if read >= max_logs:
                return read
            if task.state != "success" or not _names_vm_tool(task, run_lineage):
                continue
            task.log = fetch(run, task)
            read += 1
    return read


def _names_vm_tool(task: TaskRecord, lineage: RunLineage | None) -> bool:
    if task.rendered:
        return True
    seen = lineage.tasks.get((task.task_id, task.map_index)) if lineage is not None else None
    return bool(seen is not None and seen.source_code)
