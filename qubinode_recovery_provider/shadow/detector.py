"""The shadow-error detector: finished runs x lineage x VM inventories in, findings out.

Pure: it does no I/O and reads no clock unless asked (``now``), so the same inputs always give the
same findings. It looks only at runs Airflow calls a success and reports:

``vm_not_created``
    a task (or, by the ``qubinode_vm`` convention, a run) declared a libvirt domain, the host was
    listed, and the domain is not there.
``vm_not_running``
    the declared domain exists but is not in the promised state (``running`` unless declared
    ``defined``).
``lineage_missing``
    a successful task without an OpenLineage COMPLETE event, or a successful run without any event
    (one finding for the run then, not one per task) or without its DAG-run COMPLETE event.
``lineage_incomplete``
    the DAG-run START event's ``airflow`` job facet announces tasks that emit events, and some of them
    (that did run) sent none.
``state_mismatch``
    OpenLineage says FAIL where Airflow says success (task or run), or a successful run contains
    failed tasks.
``inventory_unreachable``
    a libvirt host could not be listed; the VMs declared on it stay unverified.

When one VM is declared by several runs, only the latest run's promise is checked (a later run may
legitimately have replaced the VM); the others are listed in the evidence.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.models import Severity, ShadowError, ShadowErrorType, utcnow
from qubinode_recovery_provider.redaction import redact
from qubinode_recovery_provider.shadow.domains import (
    DEFAULT_HOST,
    PARAM_KEY,
    DomainURIError,
    declarations_from_params,
)
from qubinode_recovery_provider.shadow.inference import RunInference, infer_run, prepare_runs
from qubinode_recovery_provider.shadow.records import (
    FAILED_TASK_STATES,
    NEGATIVE_STATES,
    NOT_RUN_STATES,
    SUCCESS,
    DeclaredDomain,
    HostInventory,
    RunRecord,
    TaskRecord,
)

if TYPE_CHECKING:
    from qubinode_recovery_provider.shadow.lineage import LineageIndex, RunLineage, TaskLineage

DEFAULT_IGNORED_OPERATORS = frozenset({"EmptyOperator"})
T = ShadowErrorType

# How sure each kind of finding is; the evidence explains each one.
CONFIDENCE = {
    "vm_not_created.outlet": 0.95,
    "vm_not_created.param": 0.85,
    "vm_not_running.outlet": 0.9,
    "vm_not_running.param": 0.8,
    "vm_not_created.inferred": 0.8,  # the contract's own confidence is used; this is its ceiling
    "vm_not_running.inferred": 0.7,
    "lineage_missing.run": 0.9,
    "lineage_missing.task": 0.85,
    "lineage_missing.dag_event": 0.6,
    "lineage_incomplete": 0.8,
    "lineage_incomplete.no_tasks": 0.65,
    "state_mismatch.lineage_fail": 0.9,
    "state_mismatch.failed_task": 0.8,
    "inventory_unreachable": 0.95,
}
SEVERITY = {
    T.VM_NOT_CREATED: Severity.CRITICAL,
    T.VM_NOT_RUNNING: Severity.HIGH,
    T.STATE_MISMATCH: Severity.HIGH,
    T.INVENTORY_UNREACHABLE: Severity.HIGH,
    T.LINEAGE_MISSING: Severity.MEDIUM,
    T.LINEAGE_INCOMPLETE: Severity.MEDIUM,
}


@dataclass(slots=True)
class Promise:
    """A VM declared by one successful run."""

    declared: DeclaredDomain
    run: RunRecord


@dataclass
class DetectionReport:
    """The findings of one detection, the warnings met on the way, and counts."""

    findings: list[ShadowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    explanations: dict[tuple[str, str], RunInference] = field(default_factory=dict)

    def by_type(self) -> dict[str, int]:
        return dict(Counter(f.type.value for f in self.findings))


class ShadowErrorDetector:
    """Find shadow errors in finished runs.

    :param ignore_operators: operator class names whose tasks never emit lineage (Airflow marks
        ``EmptyOperator`` tasks successful without running them)
    :param ignore_dags: DAG ids not checked at all
    :param now: the detection time stamped on findings (default: the current time)
    :param infer: infer the VMs of runs from their tasks' command lines, lineage facets and logs
        (:mod:`~qubinode_recovery_provider.shadow.inference`); explicit declarations win
    :param default_host: the host of inferred VMs whose command names none (default: the one listed
        host when there is exactly one, else ``localhost``)
    :param explain: run ids whose inference is kept in :attr:`DetectionReport.explanations`
    """

    def __init__(
        self,
        ignore_operators: Iterable[str] = DEFAULT_IGNORED_OPERATORS,
        ignore_dags: Iterable[str] = (),
        now: datetime | None = None,
        infer: bool = True,
        default_host: str | None = None,
        explain: Iterable[str] = (),
    ) -> None:
        self.ignore_operators = frozenset(ignore_operators)
        self.ignore_dags = frozenset(ignore_dags)
        self.now = now
        self.infer = infer
        self.default_host = default_host
        self.explain = frozenset(explain)
        self._ignored_cache: dict[str | None, bool] = {}

    def prepare(self, runs: Sequence[RunRecord]) -> None:
        """Work :meth:`detect` would do first, done ahead (the scan calls this while it waits for its
        lineage workers): the command texts of the runs' tasks parsed for the inference. Optional; the
        findings are the same either way."""
        if self.infer:
            prepare_runs(runs)

    def detect(
        self,
        runs: Iterable[RunRecord],
        lineage: LineageIndex | None,
        inventories: Iterable[HostInventory] = (),
    ) -> DetectionReport:
        """Check every successful run; ``lineage`` None (or unavailable) skips the lineage checks."""
        report = DetectionReport()
        self._stamp = self.now or utcnow()
        inventories = list(inventories)
        self._host = self.default_host or _single_host(inventories)
        self._inferences: dict[Any, RunInference] = {}
        usable = lineage if lineage is not None and lineage.report.available else None
        promises: dict[str, list[Promise]] = {}
        for run in runs:
            if run.state != SUCCESS or run.dag_id in self.ignore_dags:
                report.stats["runs_ignored"] += 1
                continue
            report.stats["runs_checked"] += 1
            report.stats["tasks_checked"] += len(run.tasks or ())
            run_lineage = usable.get(run.dag_id, run.run_id) if usable is not None else None
            if usable is not None:
                report.stats["runs_with_lineage"] += run_lineage is not None
                report.findings.extend(self._lineage_findings(run, run_lineage))
            report.findings.extend(self._failed_task_findings(run, run_lineage))
            for declared in self._declarations(run, run_lineage, report):
                promises.setdefault(declared.uri, []).append(Promise(declared, run))
        self._check_promises(promises, inventories, report)
        report.stats.update({f"findings_{k}": v for k, v in report.by_type().items()})
        return report

    # --- building findings -------------------------------------------------------------------

    def _finding(
        self,
        kind: ShadowErrorType,
        confidence_key: str,
        evidence: list[str],
        run: RunRecord | None = None,
        task_id: str | None = None,
        resource: str | None = None,
    ) -> ShadowError:
        return ShadowError(
            type=kind,
            dag_id=run.dag_id if run else None,
            run_id=run.run_id if run else None,
            task_id=task_id,
            resource=resource,
            confidence=CONFIDENCE[confidence_key],
            severity=SEVERITY[kind],
            evidence=evidence,
            detected_at=self._stamp,
        )

    def _ignored(self, operator: str | None) -> bool:
        known = self._ignored_cache.get(operator)
        if known is None:
            known = bool(operator) and operator.rpartition(".")[2] in self.ignore_operators  # type: ignore[union-attr]
            self._ignored_cache[operator] = known
        return known

    # --- lineage ------------------------------------------------------------------------------

    def _lineage_findings(self, run: RunRecord, lineage: RunLineage | None) -> list[ShadowError]:
        ended = f"Airflow: run {run.run_id} of {run.dag_id} succeeded (ended {run.end_date or 'unknown'})"
        if lineage is None:
            tasks = [t for t in run.tasks or () if t.state == SUCCESS and not self._ignored(t.operator)]
            evidence = [ended, "OpenLineage: no event at all for this run"]
            if run.tasks is not None:
                evidence.append(f"{len(tasks)} successful tasks should each have sent START and COMPLETE")
            return [self._finding(T.LINEAGE_MISSING, "lineage_missing.run", evidence, run)]
        findings = self._dag_event_findings(run, lineage, ended)
        missing: set[str] = set()
        for task in _tasks_of(run, lineage):
            finding = self._task_lineage_finding(run, task, lineage, ended)
            if finding is not None:
                findings.append(finding)
                if finding.type == T.LINEAGE_MISSING:
                    missing.add(task.task_id)
        incomplete = self._incomplete_finding(run, lineage, missing, ended)
        if incomplete is not None:
            findings.append(incomplete)
        return findings

    def _dag_event_findings(self, run: RunRecord, lineage: RunLineage, ended: str) -> list[ShadowError]:
        terminal = lineage.dag_terminal
        if terminal is None:
            evidence = [
                ended,
                f"OpenLineage: {lineage.events} events for the run's tasks but no DAG-run COMPLETE event",
            ]
            return [self._finding(T.LINEAGE_MISSING, "lineage_missing.dag_event", evidence, run)]
        if terminal[1] == "FAIL" or lineage.dag_run_state == "failed":
            evidence = [
                ended,
                f"OpenLineage: DAG-run {terminal[1]} event at {terminal[0]}"
                + (f" (airflowState.dagRunState={lineage.dag_run_state})" if lineage.dag_run_state else ""),
            ]
            return [self._finding(T.STATE_MISMATCH, "state_mismatch.lineage_fail", evidence, run)]
        return []

    def _task_lineage_finding(
        self, run: RunRecord, task: TaskRecord, lineage: RunLineage, ended: str
    ) -> ShadowError | None:
        if task.state != SUCCESS or self._ignored(task.operator) or not _announced_emitter(lineage, task):
            return None
        seen = _task_lineage(lineage, task)
        if seen is not None and seen.terminal is not None and seen.terminal[2] == "COMPLETE":
            return None  # (the common case: no evidence text built)
        airflow = f"Airflow: task {_task_label(task)} succeeded (try {task.try_number or '?'})"
        if seen is None or seen.terminal is None:
            got = f"only {', '.join(sorted(seen.types))}" if seen else "no event at all"
            evidence = [ended, airflow, f"OpenLineage: no COMPLETE event for the task ({got})"]
            return self._finding(T.LINEAGE_MISSING, "lineage_missing.task", evidence, run, task.task_id)
        try_number, when, kind = seen.terminal
        if kind == "COMPLETE":
            return None
        if task.try_number and try_number and try_number < task.try_number:
            evidence = [ended, airflow, f"OpenLineage: last event is {kind} of try {try_number} at {when}"]
            return self._finding(T.LINEAGE_MISSING, "lineage_missing.task", evidence, run, task.task_id)
        evidence = [ended, airflow, f"OpenLineage: {kind} event for try {try_number or '?'} at {when}"]
        if seen.error:
            # the task's own error text: redact the whole of it before cutting it short
            evidence.append(f"OpenLineage errorMessage: {redact(seen.error)[:300]}")
        return self._finding(T.STATE_MISMATCH, "state_mismatch.lineage_fail", evidence, run, task.task_id)

    def _incomplete_finding(
        self, run: RunRecord, lineage: RunLineage, missing: set[str], ended: str
    ) -> ShadowError | None:
        announced = lineage.announced
        if not announced:
            return None
        seen_keys = lineage.tasks
        if all((task_id, -1) in seen_keys for task_id in announced):
            return None  # every announced task sent events (the common case: no sets built)
        expected = {
            task_id
            for task_id, (operator, emits) in announced.items()
            if emits and not self._ignored(operator)
        }
        not_run = {t.task_id for t in _tasks_of(run, lineage) if (t.state or "none") in NOT_RUN_STATES}
        seen = lineage.task_ids_seen()
        silent = sorted(expected - seen - not_run - missing)
        if not silent:
            return None
        evidence = [
            ended,
            f"OpenLineage: the DAG-run START event announces {len(expected)} tasks that emit events; "
            f"events arrived from {len(expected & seen)}",
            f"no event from: {', '.join(silent[:20])}" + (" ..." if len(silent) > 20 else ""),
        ]
        key = "lineage_incomplete" if run.tasks is not None else "lineage_incomplete.no_tasks"
        return self._finding(T.LINEAGE_INCOMPLETE, key, evidence, run)

    # --- Airflow's own view ---------------------------------------------------------------------

    def _failed_task_findings(self, run: RunRecord, lineage: RunLineage | None) -> list[ShadowError]:
        """A successful run that contains failed tasks (trigger rules, teardown, leaves)."""
        if run.tasks is not None:
            failed = [(t.task_id, t.state, t.try_number) for t in run.tasks if t.state in FAILED_TASK_STATES]
            source = "Airflow"
        elif lineage is not None and lineage.tasks_state:
            failed = [(tid, s, 0) for tid, s in lineage.tasks_state.items() if s in FAILED_TASK_STATES]
            source = "OpenLineage airflowState"
        else:
            return []
        findings = []
        for task_id, state, try_number in failed:
            if state != "failed":
                continue
            evidence = [
                f"Airflow: run {run.run_id} of {run.dag_id} is success (ended {run.end_date or 'unknown'})",
                f"{source}: task {task_id} is {state}" + (f" after try {try_number}" if try_number else ""),
            ]
            findings.append(
                self._finding(T.STATE_MISMATCH, "state_mismatch.failed_task", evidence, run, task_id)
            )
        return findings

    # --- declared VMs -------------------------------------------------------------------------

    def _declarations(
        self, run: RunRecord, lineage: RunLineage | None, report: DetectionReport
    ) -> list[DeclaredDomain]:
        found: dict[str, DeclaredDomain] = {}
        if lineage is not None:
            states: dict[tuple[str, int], str | None] | None = None  # (built once a task declares)
            for key, task in lineage.tasks.items():
                if not task.outputs:
                    continue
                if states is None:
                    states = {(t.task_id, t.map_index): t.state for t in run.tasks or ()}
                if _promise_kept_by(key, task, states):
                    for declared in task.outputs.values():
                        found.setdefault(declared.uri, declared)
            for declared in lineage.conf_declared:
                found.setdefault(declared.uri, declared)
        self._param_declarations(run, found, report)
        report.stats["declarations"] += len(found)
        if self.infer:
            self._inferred(run, lineage, found, report)
        return list(found.values())

    def _param_declarations(
        self, run: RunRecord, found: dict[str, DeclaredDomain], report: DetectionReport
    ) -> None:
        for source in (run.conf, run.dag_params or {}):
            if PARAM_KEY not in source:
                continue
            try:
                for declared in declarations_from_params(source[PARAM_KEY]):
                    found.setdefault(declared.uri, declared)
            except DomainURIError as exc:
                report.warnings.append(f"run {run.run_id} of {run.dag_id}: {PARAM_KEY} ignored: {exc}")
            break  # the run's conf overrides the DAG's default params

    def _inferred(
        self,
        run: RunRecord,
        lineage: RunLineage | None,
        found: dict[str, DeclaredDomain],
        report: DetectionReport,
    ) -> None:
        """Add the inferred contracts of ``run`` that no explicit declaration names."""
        inference = infer_run(run, lineage, self._host, self._inferences)
        for declared in inference.declared:
            if declared.uri in found:
                inference.notes.append(f"{declared.uri}: declared explicitly; the declaration wins")
                continue
            found[declared.uri] = declared
            report.stats["declarations_inferred"] += 1
        if run.run_id in self.explain:
            report.explanations[run.key] = inference

    def _check_promises(
        self,
        promises: dict[str, list[Promise]],
        inventories: Sequence[HostInventory],
        report: DetectionReport,
    ) -> None:
        by_host: dict[str, HostInventory] = {}
        for inventory in inventories:
            for name in inventory.names():
                by_host.setdefault(name, inventory)
        unverified: dict[str, list[str]] = {}
        unknown_hosts: Counter[str] = Counter()
        for uri, claims in sorted(promises.items()):
            claims.sort(key=lambda p: p.run.end_date or "")
            latest = claims[-1]
            host = by_host.get(latest.declared.host)
            if host is None:
                unknown_hosts[latest.declared.host] += 1
            elif not host.reachable:
                unverified.setdefault(host.host, []).append(uri)
            else:
                report.stats["declarations_verified"] += 1
                finding = self._domain_finding(latest, claims[:-1], host)
                if finding is not None:
                    report.findings.append(finding)
        for name, count in sorted(unknown_hosts.items()):
            report.stats["declarations_unverified"] += count
            report.warnings.append(
                f"{count} declared VMs on host {name!r} not verified: no libvirt connection for that host"
            )
        for inventory in inventories:
            if not inventory.reachable:
                report.stats["declarations_unverified"] += len(unverified.get(inventory.host, ()))
                report.findings.append(self._unreachable(inventory, unverified.get(inventory.host, [])))

    def _domain_finding(
        self, promise: Promise, earlier: list[Promise], inventory: HostInventory
    ) -> ShadowError | None:
        declared, run = promise.declared, promise.run
        if declared.expected_state in NEGATIVE_STATES:
            return None  # the latest run stopped or deleted it on purpose
        domain = inventory.domains.get(declared.name)
        if domain is not None and domain.satisfies(declared.expected_state):
            return None
        evidence = [
            f"Airflow: run {run.run_id} of {run.dag_id} succeeded (ended {run.end_date or 'unknown'})",
            *_declared_by(declared),
        ]
        listed = f"libvirt: {inventory.uri} listed {len(inventory.domains)} domains at {inventory.listed_at}"
        if earlier:
            evidence.append(f"also declared by {len(earlier)} earlier runs (latest checked)")
        if domain is None:
            evidence.append(f"{listed}; {declared.name!r} is not among them")
            kind, key = T.VM_NOT_CREATED, f"vm_not_created.{declared.source}"
        else:
            reason = f" (reason: {domain.reason})" if domain.reason else ""
            evidence.append(f"{listed}; {declared.name!r} is {domain.state}{reason}")
            kind, key = T.VM_NOT_RUNNING, f"vm_not_running.{declared.source}"
        finding = self._finding(kind, key, evidence, run, declared.task_id, declared.uri)
        if declared.source == "inferred":
            ceiling = CONFIDENCE[key]
            finding.confidence = min(ceiling, declared.confidence or ceiling)
            finding.inferred = True
        return finding

    def _unreachable(self, inventory: HostInventory, unverified: list[str]) -> ShadowError:
        reason = redact(inventory.error or "no reason given")
        evidence = [
            f"libvirt: {redact(inventory.uri)} could not be listed: {reason}",
            f"gave up after {inventory.elapsed_seconds:.1f} s",
        ]
        if unverified:
            shown = ", ".join(unverified[:10]) + (" ..." if len(unverified) > 10 else "")
            evidence.append(f"{len(unverified)} declared VMs left unverified: {shown}")
        return self._finding(
            T.INVENTORY_UNREACHABLE, "inventory_unreachable", evidence, resource=f"libvirt://{inventory.host}"
        )


# --- helpers ------------------------------------------------------------------------------------


def _single_host(inventories: Sequence[HostInventory]) -> str:
    """The host of inferred VMs whose command names none: the only listed host, else localhost."""
    return inventories[0].host if len(inventories) == 1 else DEFAULT_HOST


def _declared_by(declared: DeclaredDomain) -> list[str]:
    if declared.source == "inferred":
        head = f"inferred from task {declared.task_id}: {declared.uri} expected {declared.expected_state}"
        return [head, *(f"  {line}" for line in declared.evidence[:6])]
    who = f"task {declared.task_id}" if declared.task_id else f"the run's {PARAM_KEY} param"
    return [f"declared by {who}: {declared.uri} expected {declared.expected_state}"]


def _tasks_of(run: RunRecord, lineage: RunLineage | None) -> list[TaskRecord]:
    """The run's task instances; without them, the task states of the OpenLineage airflowState facet."""
    if run.tasks is not None:
        return run.tasks
    if lineage is not None and lineage.tasks_state:
        return [TaskRecord(task_id=k, state=v) for k, v in lineage.tasks_state.items()]
    return []


def _task_lineage(lineage: RunLineage, task: TaskRecord) -> TaskLineage | None:
    found = lineage.tasks.get((task.task_id, task.map_index))
    if found is None and task.map_index >= 0:
        found = lineage.tasks.get((task.task_id, -1))
    return found


def _announced_emitter(lineage: RunLineage, task: TaskRecord) -> bool:
    """False when the DAG-run START event says this task emits no events (disabled for it)."""
    if not lineage.announced or task.task_id not in lineage.announced:
        return True
    return lineage.announced[task.task_id][1]


def _task_label(task: TaskRecord) -> str:
    return task.task_id if task.map_index < 0 else f"{task.task_id}[{task.map_index}]"


def _promise_kept_by(
    key: tuple[str, int], task: TaskLineage, states: dict[tuple[str, int], str | None]
) -> bool:
    """A declaration counts when Airflow says the task succeeded (or, without task states, OpenLineage)."""
    if states:
        state = states.get(key, states.get((key[0], -1)))
        return state == SUCCESS
    return task.terminal_type == "COMPLETE"
