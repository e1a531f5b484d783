"""The VMs a successful run meant to leave behind, inferred when its DAG declares none.

For every successful task of a run, :func:`infer_run` reads its rendered template fields (REST API),
the ``sourceCode`` facet of its OpenLineage events and, when the scan fetched it, its log
(:mod:`~qubinode_recovery_provider.shadow.contracts`), and turns the last action on each domain into a
:class:`~qubinode_recovery_provider.shadow.records.DeclaredDomain` with ``source="inferred"``, its
confidence and its evidence. Explicit declarations (outlets, ``qubinode_vm``) win over inferred ones
for the same domain (the detector applies that rule).

A DAG opts out with the tag :data:`OPT_OUT_TAG` or the param :data:`OPT_OUT_PARAM` set to false (in
its params or a run's conf).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.shadow.contracts import (
    Contract,
    TaskInference,
    infer_task,
    last_actions,
    mentions_vm_tool,
    prepare_text,
)
from qubinode_recovery_provider.shadow.domains import DomainURIError, check_host
from qubinode_recovery_provider.shadow.records import SUCCESS, DeclaredDomain

if TYPE_CHECKING:
    from qubinode_recovery_provider.shadow.lineage import RunLineage
    from qubinode_recovery_provider.shadow.records import RunRecord, TaskRecord

OPT_OUT_TAG = "qubinode-no-infer"
OPT_OUT_PARAM = "qubinode_infer_vms"
SOURCE = "inferred"
#: Rendered fields that are not command text (read for context only).
_CONTEXT_FIELDS = frozenset({"cwd", "remote_host", "env", "environment"})


@dataclass
class RunInference:
    """What inference found for one run: the inferred declarations, per-task detail, notes."""

    declared: list[DeclaredDomain] = field(default_factory=list)
    tasks: list[TaskInference] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    opted_out: str | None = None

    def lines(self) -> list[str]:
        """A readable account (``scan --explain``)."""
        if self.opted_out:
            return [f"inference off: {self.opted_out}"]
        out: list[str] = []
        for task in self.tasks:
            out.append(f"task {task.task_id}: read {', '.join(task.sources) or 'nothing'}")
            for contract in task.contracts:
                where = f" on {contract.host}" if contract.host else ""
                out.append(
                    f"  {contract.action} {contract.name}{where} ({contract.tool}, confidence "
                    f"{contract.confidence:.2f})"
                )
                out.extend(f"    {line}" for line in contract.evidence)
            out.extend(f"  note: {note}" for note in task.notes)
        for declared in self.declared:
            out.append(
                f"contract: {declared.uri} expected {declared.expected_state} (task {declared.task_id})"
            )
        out.extend(f"note: {note}" for note in self.notes)
        return out or ["no task of this run names a VM tool (kcli, virt-install, virsh, Ansible virt)"]


def opted_out(run: RunRecord) -> str | None:
    """Why inference is off for ``run`` (its DAG's tag or param), or None."""
    if run.dag_tags and OPT_OUT_TAG in run.dag_tags:
        return f"DAG {run.dag_id} has the tag {OPT_OUT_TAG}"
    for where, source in (("run conf", run.conf), ("DAG params", run.dag_params or {})):
        if OPT_OUT_PARAM in source:
            value = source[OPT_OUT_PARAM]
            if isinstance(value, dict) and "value" in value:  # a Param, as DAG details serialize it
                value = value["value"]
            if value is False or str(value).strip().lower() in ("false", "no", "0", "off"):
                return f"{where}: {OPT_OUT_PARAM} is false"
            return None
    return None


def infer_run(
    run: RunRecord,
    lineage: RunLineage | None,
    default_host: str,
    cache: dict[Any, RunInference] | None = None,
) -> RunInference:
    """The inferred contracts of ``run``'s successful tasks (in the order they ended).

    :param default_host: the inventory host of commands that name none
    :param cache: the inferences of earlier runs of one scan, by what was read (the runs of one DAG
        mostly render the same commands); inferences that read a file are not kept
    """
    result = RunInference()
    reason = opted_out(run)
    if reason:
        result.opted_out = reason
        return result
    tasks = _task_texts(run, lineage)
    if cache is None:
        return _infer(tasks, default_host)
    key = (default_host, *((t, tuple(x.items()), log, tuple(c.items())) for t, x, log, c in tasks))
    cached = cache.get(key)
    if cached is None:
        cached = _infer(tasks, default_host)
        if any(task.read_files for task in cached.tasks):
            return cached
        cache[key] = cached
    # a copy of the lists: the caller adds notes
    return RunInference(list(cached.declared), list(cached.tasks), list(cached.notes))


def prepare_runs(runs: Iterable[RunRecord], limit: int = 4096) -> int:
    """Parse the distinct command texts of the runs' successful tasks (their rendered fields) into the
    inference's caches ahead of :func:`infer_run`, which then finds them parsed (same results); at most
    ``limit`` texts (the caches' size). Returns how many texts were parsed."""
    seen: set[tuple[str, str | None]] = set()
    for run in runs:
        if opted_out(run):
            continue
        for task in run.tasks or ():
            if task.state != SUCCESS or not task.rendered:
                continue
            texts, context = _rendered_texts(task)
            for text in texts.values():
                key = (text, context.get("remote_host"))
                if key in seen:
                    continue
                if len(seen) >= limit:
                    return len(seen)
                seen.add(key)
                prepare_text(*key)
    return len(seen)


def _infer(
    tasks: list[tuple[str, dict[str, str], str | None, dict[str, str]]], default_host: str
) -> RunInference:
    result = RunInference()
    contracts: list[Contract] = []
    for task_id, texts, log, context in tasks:
        inference = infer_task(task_id, texts, log, context.get("remote_host"), context.get("cwd"))
        if inference.sources:
            result.tasks.append(inference)
        contracts.extend(inference.contracts)
    for contract in last_actions(contracts):
        if contract.negative:
            result.notes.append(
                f"{contract.name}: the run's last action is {contract.action} (task "
                f"{contract.task_id}); nothing to check"
            )
        declared = _declared(contract, contract.task_id, default_host, result.notes)
        if declared is not None:
            result.declared.append(declared)
    return result


def _declared(contract: Contract, task_id: str, default_host: str, notes: list[str]) -> DeclaredDomain | None:
    try:
        host = check_host(contract.host) if contract.host else default_host
    except DomainURIError:
        notes.append(f"{contract.name}: host {contract.host!r} is not a host name; not inferred")
        return None
    return DeclaredDomain(
        host,
        contract.name,
        contract.expected_state,
        task_id,
        SOURCE,
        confidence=round(contract.confidence, 2),
        evidence=tuple(contract.evidence),
    )


def _task_texts(
    run: RunRecord, lineage: RunLineage | None
) -> list[tuple[str, dict[str, str], str | None, dict[str, str]]]:
    """``(task_id, {origin: text}, log, context)`` of each successful task that names a VM tool."""
    found: dict[tuple[str, int], tuple[str, dict[str, str], str | None, dict[str, str]]] = {}
    order: dict[tuple[str, int], str] = {}
    # successful tasks with nothing of their own to read: an entry only if their lineage has a text
    plain: dict[tuple[str, int], TaskRecord] = {}
    for task in run.tasks or ():
        if task.state != SUCCESS:
            continue
        key = (task.task_id, task.map_index)
        if task.rendered or task.log is not None:
            texts, context = _rendered_texts(task)
            found[key] = (task.task_id, texts, task.log, context)
            order[key] = task.end_date or ""
            plain.pop(key, None)
        else:  # (the later of two tasks with one key wins, as for the others)
            plain[key] = task
            found.pop(key, None)
    if lineage is not None:
        for key, seen in lineage.tasks.items():
            if not seen.source_code:
                continue
            entry = _entry(key, found, plain, order) or _entry((key[0], -1), found, plain, order)
            if entry is None:
                if run.tasks is not None or seen.terminal_type != "COMPLETE":
                    continue  # not a successful task
                entry = found[key] = (key[0], {}, None, {})
                order[key] = seen.terminal[1] if seen.terminal else ""
            entry[1]["OpenLineage sourceCode"] = seen.source_code
    keys = sorted((k for k, v in found.items() if v[1] or v[2]), key=lambda k: (order.get(k, ""), k))
    return [found[k] for k in keys]


def _entry(
    key: tuple[str, int],
    found: dict[tuple[str, int], tuple[str, dict[str, str], str | None, dict[str, str]]],
    plain: dict[tuple[str, int], TaskRecord],
    order: dict[tuple[str, int], str],
) -> tuple[str, dict[str, str], str | None, dict[str, str]] | None:
    """The entry of the successful task ``key``, made now for a task with no text of its own."""
    entry = found.get(key)
    if entry is None:
        task = plain.pop(key, None)
        if task is not None:
            entry = found[key] = (task.task_id, {}, None, {})
            order[key] = task.end_date or ""
    return entry


def _rendered_texts(task: TaskRecord) -> tuple[dict[str, str], dict[str, str]]:
    texts: dict[str, str] = {}
    context: dict[str, str] = {}
    for name, value in (task.rendered or {}).items():
        if name in _CONTEXT_FIELDS:
            context[name] = value
        elif mentions_vm_tool(value):
            texts[f"rendered {name}"] = value
    return texts, context


def rendered_subset(fields: Any) -> dict[str, str] | None:
    """The text values of a task's rendered fields, when one of them names a VM tool (else None)."""
    if not isinstance(fields, dict):
        return None
    texts = {str(k): v for k, v in fields.items() if isinstance(v, str)}
    if not any(mentions_vm_tool(v) for v in texts.values()):
        return None
    return {k: v[:65536] for k, v in texts.items()}
