"""What OpenLineage says about each Airflow run, condensed while the events stream past.

Every lineage source (the file transport's JSON lines, Marquez) turns what it reads into
:class:`LineageRecord` objects and hands them to a :class:`LineageIndex`, which keeps per run only
what the detector needs: the event types seen per task, the latest terminal event per task, the libvirt
domains the tasks declared as outputs, the DAG-run facets (``airflowState``, the ``airflow`` job facet
with the announced tasks) and the conf. Records of runs the scan does not look at are counted and
dropped at once, so memory grows with the runs in the scan window, never with the events read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from qubinode_recovery_provider.shadow.records import DeclaredDomain, SourceReport

if TYPE_CHECKING:
    from datetime import datetime

TERMINAL_TYPES = frozenset({"COMPLETE", "FAIL", "ABORT"})
RunKey = tuple[str, str]


@dataclass(slots=True)
class LineageRecord:
    """One OpenLineage event (or one Marquez run), reduced to what the scan uses.

    ``kind`` is ``dag`` for a DAG-run event and ``task`` for a task event. ``run_id`` is Airflow's run
    id; when an event lacks it, ``parent_run_id`` (the OpenLineage id of the DAG run) lets the index
    attribute it once the DAG-run event has been seen.
    """

    kind: str
    event_type: str
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: int = -1
    try_number: int = 0
    event_time: str = ""
    outputs: tuple[DeclaredDomain, ...] = ()
    announced: dict[str, tuple[str | None, bool]] | None = None
    dag_run_state: str | None = None
    tasks_state: dict[str, str | None] | None = None
    conf_declared: tuple[DeclaredDomain, ...] = ()
    error: str | None = None
    ol_run_id: str | None = None
    parent_run_id: str | None = None
    source_code: str | None = None


@dataclass(slots=True)
class TaskLineage:
    """Lineage of one task (one map index) of one run, across its tries."""

    types: set[str] = field(default_factory=set)
    terminal: tuple[int, str, str] | None = None  # (try_number, event_time, event_type)
    outputs: dict[str, DeclaredDomain] = field(default_factory=dict)
    error: str | None = None
    events: int = 0
    source_code: str | None = None  # the sourceCode facet, when it names a VM tool

    def take_terminal(self, try_number: int, event_time: str, event_type: str, error: str | None) -> None:
        """Keep the latest terminal event (highest try, then latest time)."""
        terminal = self.terminal
        if terminal is None or (try_number, event_time) >= terminal[:2]:
            self.terminal = (try_number, event_time, event_type)
            if event_type != "COMPLETE" and error:
                self.error = error

    @property
    def terminal_type(self) -> str | None:
        return self.terminal[2] if self.terminal else None

    def dump(self) -> tuple[Any, ...]:
        """Plain tuples (fast to pickle between processes)."""
        outputs = tuple(
            (d.host, d.name, d.expected_state, d.task_id, d.source) for d in self.outputs.values()
        )
        return (tuple(self.types), self.terminal, outputs, self.error, self.events, self.source_code)

    @classmethod
    def load(cls, data: tuple[Any, ...]) -> TaskLineage:
        types, terminal, outputs, error, events, source_code = data
        declared = (DeclaredDomain(*d) for d in outputs)
        return cls(set(types), terminal, {d.uri: d for d in declared}, error, events, source_code)

    def merge(self, other: TaskLineage) -> None:
        """Fold in what another reader saw of the same task."""
        self.events += other.events
        self.types |= other.types
        self.source_code = self.source_code or other.source_code
        for uri, declared in other.outputs.items():
            self.outputs.setdefault(uri, declared)
        if other.terminal is not None and (self.terminal is None or other.terminal[:2] >= self.terminal[:2]):
            self.terminal = other.terminal
            self.error = other.error or self.error


@dataclass(slots=True)
class RunLineage:
    """Lineage of one Airflow DAG run: its own events and its tasks'."""

    dag_types: set[str] = field(default_factory=set)
    dag_terminal: tuple[str, str] | None = None  # (event_time, event_type)
    dag_run_state: str | None = None
    tasks_state: dict[str, str | None] | None = None
    announced: dict[str, tuple[str | None, bool]] | None = None
    conf_declared: tuple[DeclaredDomain, ...] = ()
    tasks: dict[tuple[str, int], TaskLineage] = field(default_factory=dict)
    events: int = 0

    def add(self, record: LineageRecord) -> None:
        if record.kind == "dag":
            self.events += 1
            if record.conf_declared and not self.conf_declared:
                self.conf_declared = record.conf_declared
            self._add_dag(record)
            return
        self.add_task_event(
            record.task_id or "",
            record.map_index,
            record.event_type,
            record.try_number,
            record.event_time,
            record.outputs,
            record.error,
            record.source_code,
            record.conf_declared,
        )

    def add_task_event(
        self,
        task_id: str,
        map_index: int,
        event_type: str,
        try_number: int,
        event_time: str,
        outputs: tuple[DeclaredDomain, ...],
        error: str | None,
        source_code: str | None,
        conf_declared: tuple[DeclaredDomain, ...],
    ) -> None:
        """One task event: what :meth:`add` does with a task record, from its fields (the file reader
        calls this straight from the decoded event, without building the record)."""
        self.events += 1
        if conf_declared and not self.conf_declared:
            self.conf_declared = conf_declared
        key = (task_id, map_index)
        task = self.tasks.get(key)
        if task is None:
            task = self.tasks[key] = TaskLineage()
        task.events += 1
        task.types.add(event_type)
        if source_code is not None:
            task.source_code = source_code
        if outputs:
            for declared in outputs:
                task.outputs.setdefault(declared.uri, declared)
        if event_type in TERMINAL_TYPES:
            task.take_terminal(try_number, event_time, event_type, error)

    def _add_dag(self, record: LineageRecord) -> None:
        self.dag_types.add(record.event_type)
        if record.announced is not None:
            self.announced = record.announced
        if record.event_type in TERMINAL_TYPES:
            candidate = (record.event_time, record.event_type)
            if self.dag_terminal is None or candidate[0] >= self.dag_terminal[0]:
                self.dag_terminal = candidate
                if record.dag_run_state is not None:
                    self.dag_run_state = record.dag_run_state
                if record.tasks_state is not None:
                    self.tasks_state = record.tasks_state

    def task_ids_seen(self) -> set[str]:
        return {task_id for task_id, _ in self.tasks}

    def dump(self) -> tuple[Any, ...]:
        """Plain tuples (fast to pickle between processes)."""
        conf = tuple((d.host, d.name, d.expected_state, d.task_id, d.source) for d in self.conf_declared)
        tasks = [(key, task.dump()) for key, task in self.tasks.items()]
        return (
            tuple(self.dag_types),
            self.dag_terminal,
            self.dag_run_state,
            self.tasks_state,
            self.announced,
            conf,
            self.events,
            tasks,
        )

    @classmethod
    def load(cls, data: tuple[Any, ...]) -> RunLineage:
        dag_types, terminal, state, tasks_state, announced, conf, events, tasks = data
        return cls(
            set(dag_types),
            terminal,
            state,
            tasks_state,
            announced,
            tuple(DeclaredDomain(*d) for d in conf),
            {key: TaskLineage.load(task) for key, task in tasks},
            events,
        )

    def merge(self, other: RunLineage) -> None:
        """Fold in what another reader saw of the same run."""
        self.events += other.events
        self.dag_types |= other.dag_types
        if other.announced is not None:
            self.announced = other.announced
        if not self.conf_declared:
            self.conf_declared = other.conf_declared
        if other.dag_terminal is not None and (
            self.dag_terminal is None or other.dag_terminal[0] >= self.dag_terminal[0]
        ):
            self.dag_terminal = other.dag_terminal
            self.dag_run_state = other.dag_run_state or self.dag_run_state
            self.tasks_state = other.tasks_state or self.tasks_state
        for key, task in other.tasks.items():
            mine = self.tasks.get(key)
            if mine is None:
                self.tasks[key] = task
            else:
                mine.merge(task)


class LineageIndex:
    """Per-run lineage of the runs the scan looks at.

    :param wanted: the ``(dag_id, run_id)`` pairs to keep; None keeps every run (small inputs, tests)
    :param name: the source's name in warnings
    """

    def __init__(self, wanted: Collection[RunKey] | None = None, name: str = "lineage") -> None:
        self.wanted = set(wanted) if wanted is not None else None
        self.wanted_dags = {dag_id for dag_id, _ in self.wanted} if self.wanted is not None else None
        self.report = SourceReport(name)
        self.runs: dict[RunKey, RunLineage] = {}
        self.other_runs = 0
        self.unattributed = 0
        self._ol_runs: dict[str, RunKey] = {}
        self._orphans: dict[str, list[LineageRecord]] = {}

    def __len__(self) -> int:
        return len(self.runs)

    def get(self, dag_id: str, run_id: str) -> RunLineage | None:
        return self.runs.get((dag_id, run_id))

    def add(self, record: LineageRecord) -> None:
        """Take one record into the index (or count it as belonging to a run outside the scan)."""
        if record.run_id is None or record.dag_id is None:
            self.report.items += 1
            self._hold_orphan(record)
            return
        run = self.run_for(record.dag_id, record.run_id)
        if run is None:
            return
        if record.kind == "dag" and record.ol_run_id:
            self._ol_runs[record.ol_run_id] = (record.dag_id, record.run_id)
        run.add(record)

    def run_for(self, dag_id: str, run_id: str) -> RunLineage | None:
        """The run an event with both ids goes to, the event counted; None when the run is outside the
        scan (counted too). :meth:`add` takes a record through it; the file reader's task events go
        from it to :meth:`RunLineage.add_task_event`."""
        self.report.items += 1
        key = (dag_id, run_id)
        if self.wanted is not None and key not in self.wanted:
            self.other_runs += 1
            return None
        run = self.runs.get(key)
        if run is None:
            run = self.runs[key] = RunLineage()
        return run

    def add_all(self, records: Iterable[LineageRecord]) -> None:
        for record in records:
            self.add(record)

    def dump(self) -> tuple[Any, ...]:
        """The partial index as plain tuples, for :meth:`merge_dump` in another process."""
        runs = [(key, run.dump()) for key, run in self.runs.items()]
        counts = (self.report.items, self.report.skipped, self.other_runs, self.unattributed)
        return (counts, self._ol_runs, self._orphans, runs)

    def merge_dump(self, data: tuple[Any, ...]) -> None:
        """Fold in an index :meth:`dump`-ed by another process (which may have kept every run: the
        runs this index does not want are counted and dropped here)."""
        counts, ol_runs, orphans, runs = data
        partial = LineageIndex(None, self.report.name)
        partial.report.items, partial.report.skipped, partial.other_runs, partial.unattributed = counts
        wanted, dags = self.wanted, self.wanted_dags
        if wanted is not None and dags is not None:
            kept = [(key, run) for key, run in runs if key in wanted]
            partial.other_runs += sum(run[6] for key, run in runs if key not in wanted)
            ol_runs = {ol: key for ol, key in ol_runs.items() if key in wanted}
            for parent, records in list(orphans.items()):
                mine = [r for r in records if r.dag_id in dags]
                partial.other_runs += len(records) - len(mine)
                orphans[parent] = mine
            runs = kept
        partial._ol_runs, partial._orphans = ol_runs, orphans
        partial.runs = {key: RunLineage.load(run) for key, run in runs}
        self.merge(partial)

    def merge(self, other: LineageIndex) -> None:
        """Fold in an index another reader built from another part of the input (not finished yet)."""
        self.report.items += other.report.items
        self.report.skipped += other.report.skipped
        self.other_runs += other.other_runs
        self.unattributed += other.unattributed
        self._ol_runs.update(other._ol_runs)
        for parent, records in other._orphans.items():
            self._orphans.setdefault(parent, []).extend(records)
        for key, run in other.runs.items():
            mine = self.runs.get(key)
            if mine is None:
                self.runs[key] = run
            else:
                mine.merge(run)

    def _hold_orphan(self, record: LineageRecord) -> None:
        if record.kind == "task" and record.parent_run_id:
            if self.wanted_dags is None or record.dag_id in self.wanted_dags:
                self._orphans.setdefault(record.parent_run_id, []).append(record)
                return
            self.other_runs += 1
            return
        self.unattributed += 1

    def finish(self) -> LineageIndex:
        """Attribute task events that named only their parent OpenLineage run; count the rest."""
        for parent, records in self._orphans.items():
            key = self._ol_runs.get(parent)
            if key is None:
                self.unattributed += len(records)
                continue
            run = self.runs[key]
            for record in records:
                run.add(record)
        if self.unattributed:
            self.report.warn(
                f"{self.report.name}: {self.unattributed} events could not be tied to an Airflow run "
                "(no airflow facet and no parent DAG-run event)"
            )
        self._orphans.clear()
        return self


class LineageSource(Protocol):
    """Where lineage comes from: the file transport's JSON lines or Marquez."""

    name: str

    def read(self, wanted: Collection[RunKey] | None, since: datetime | None = None) -> LineageIndex:
        """Read the lineage of the ``wanted`` runs (events older than ``since`` may be skipped).

        Never raises because the source is missing or broken: the returned index's ``report`` says
        ``available=False`` with a warning instead.
        """
        ...
