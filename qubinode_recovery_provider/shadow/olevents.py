"""Decoding OpenLineage run events as the Airflow OpenLineage provider writes them.

Only the fields the scan uses are decoded. With :mod:`msgspec` (a dependency of Airflow itself) the
decoder is typed and skips everything else at C speed; without it, or for an event whose shape the
typed decoder rejects, the standard library's :mod:`json` reads the event and the same extraction runs
on a thin attribute view of the dicts. The fields read:

- ``eventType``, ``eventTime``, ``run.runId``, ``job.name``, ``job.facets.jobType.jobType``;
- task events: run facet ``airflow`` (``dag.dag_id``, ``dagRun.run_id``, ``dagRun.conf``,
  ``task.task_id``, ``taskInstance.try_number`` / ``map_index``) and ``parent``;
- DAG-run events: run facets ``airflowDagRun`` and ``airflowState`` (``dagRunState``, ``tasksState``),
  job facet ``airflow`` (``tasks`` with ``operator`` and ``emits_ol_events``, DAG START only);
- ``errorMessage.message``; ``outputs`` with namespace ``libvirt://<host>`` (and their
  ``libvirtDomain`` facet);
- task events: job facet ``sourceCode.sourceCode`` (the rendered Bash command), kept only when it
  names a VM tool (checked on the raw bytes), for the inferred VM contracts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.shadow.contracts import mentions_vm_tool
from qubinode_recovery_provider.shadow.domains import (
    FACET_NAME,
    PARAM_KEY,
    DomainURIError,
    declarations_from_params,
    declared_from_dataset,
    declared_from_state,
)
from qubinode_recovery_provider.shadow.jsonview import View, as_int, as_str, is_raw, mapping, msgspec
from qubinode_recovery_provider.shadow.lineage import LineageIndex, LineageRecord

if TYPE_CHECKING:
    from qubinode_recovery_provider.shadow.records import DeclaredDomain


class EventError(ValueError):
    """A line that is not an OpenLineage run event."""


# --- typed decoding (msgspec) ----------------------------------------------------------------------

if msgspec is not None:
    # ``gc=False``: decoded JSON holds no reference cycles, so the structs need not be tracked by the
    # cyclic collector (a few percent of the decode, which creates about 15 of them per event).

    class _DagInfo(msgspec.Struct, gc=False):
        dag_id: str | None = None

    class _DagRunInfo(msgspec.Struct, gc=False):
        dag_id: str | None = None
        run_id: str | None = None
        conf: msgspec.Raw = msgspec.Raw()

    class _TaskInfo(msgspec.Struct, gc=False):
        task_id: str | None = None

    class _TaskInstanceInfo(msgspec.Struct, gc=False):
        try_number: int | None = None
        map_index: int | None = None

    class _AirflowRunFacet(msgspec.Struct, gc=False):
        dag: _DagInfo | None = None
        dagRun: _DagRunInfo | None = None
        task: _TaskInfo | None = None
        taskInstance: _TaskInstanceInfo | None = None

    class _StateFacet(msgspec.Struct, gc=False):
        dagRunState: str | None = None
        tasksState: dict[str, str | None] | None = None

    class _ErrorFacet(msgspec.Struct, gc=False):
        message: str | None = None

    class _Ref(msgspec.Struct, gc=False):
        runId: str | None = None
        name: str | None = None

    class _ParentFacet(msgspec.Struct, gc=False):
        run: _Ref | None = None
        job: _Ref | None = None

    class _RunFacets(msgspec.Struct, gc=False):
        airflow: _AirflowRunFacet | None = None
        airflowDagRun: _AirflowRunFacet | None = None
        airflowState: _StateFacet | None = None
        errorMessage: _ErrorFacet | None = None
        parent: _ParentFacet | None = None

    class _Run(msgspec.Struct, gc=False):
        runId: str | None = None
        facets: _RunFacets | None = None

    class _AnnouncedTask(msgspec.Struct, gc=False):
        operator: str | None = None
        emits_ol_events: bool | None = None

    class _AirflowJobFacet(msgspec.Struct, gc=False):
        tasks: dict[str, _AnnouncedTask] | None = None

    class _JobType(msgspec.Struct, gc=False):
        jobType: str | None = None

    class _SourceCode(msgspec.Struct, gc=False):
        sourceCode: str | None = None

    class _JobFacets(msgspec.Struct, gc=False):
        airflow: _AirflowJobFacet | None = None
        jobType: _JobType | None = None
        sourceCode: _SourceCode | None = None

    class _Job(msgspec.Struct, gc=False):
        namespace: str | None = None
        name: str | None = None
        facets: _JobFacets | None = None

    class _LibvirtDomainFacet(msgspec.Struct, gc=False):
        expectedState: Any = None

    class _DatasetFacets(msgspec.Struct, gc=False, rename={"libvirt_domain": FACET_NAME}):
        libvirt_domain: _LibvirtDomainFacet | None = None

    class _Dataset(msgspec.Struct, gc=False):
        namespace: str | None = None
        name: str | None = None
        facets: _DatasetFacets | None = None

    class _Event(msgspec.Struct, gc=False):
        eventType: str | None = None
        eventTime: str | None = None
        run: _Run | None = None
        job: _Job | None = None
        outputs: list[_Dataset] | None = None

    _DECODER = msgspec.json.Decoder(_Event)
    _EMPTY_FACETS: Any = _RunFacets()
    _TYPED_FACETS: tuple[type, ...] = (_DatasetFacets, type(None))
else:  # pragma: no cover
    _DECODER = None
    _EMPTY_FACETS = View({})
    _TYPED_FACETS = ()

_PARAM_KEY = PARAM_KEY.encode()


def decode_event(line: bytes | str) -> LineageRecord | None:
    """Decode one JSON event; None for a valid event that is not an Airflow run event (job or
    dataset events). Raises :class:`EventError` for anything that is not an OpenLineage event."""
    event = _decode_typed(line)
    return extract(event) if event is not None else _decode_tolerant(line)


def _decode_typed(line: bytes | str) -> Any:
    """The typed event; None for valid JSON of unexpected types (to be read the slow, tolerant way) or
    without msgspec. Raises :class:`EventError` for anything that is not JSON."""
    if _DECODER is None:  # pragma: no cover
        return None
    try:
        return _DECODER.decode(line)
    except msgspec.ValidationError:
        return None
    except msgspec.DecodeError as exc:
        raise EventError(_short(str(exc))) from None
    except RecursionError:  # (msgspec counts the levels of skipped fields too)
        raise EventError("JSON nested too deeply") from None


def add_event(line: bytes | str, index: LineageIndex) -> None:
    """:func:`decode_event`, then :meth:`LineageIndex.add` of its record, in one step: an Airflow task
    event of the usual shape goes from the typed struct straight to its task in the index, without
    the intermediate :class:`LineageRecord` (same counts, same index; the file reader's per-line path).
    Raises :class:`EventError` as :func:`decode_event` does, before the index is touched."""
    event = _decode_typed(line)
    if event is not None and _add_task_event(event, index):
        return
    record = extract(event) if event is not None else _decode_tolerant(line)
    if record is not None:
        index.add(record)


def _add_task_event(event: Any, index: LineageIndex) -> bool:
    """Take a typed task event (job type ``TASK``, the ``airflow`` run facet naming the DAG, the run
    and the task) into ``index`` as :func:`_task_record` and :meth:`LineageIndex.add` would; False,
    untouched, for any other event (the caller takes the general path)."""
    event_type, run, job = event.eventType, event.run, event.job
    if not event_type or run is None or job is None:
        return False
    facets, job_facets = run.facets, job.facets
    if facets is None or job_facets is None:
        return False
    job_type = job_facets.jobType
    airflow = facets.airflow
    if job_type is None or job_type.jobType != "TASK" or airflow is None:
        return False
    dag, dag_run, task, ti = airflow.dag, airflow.dagRun, airflow.task, airflow.taskInstance
    if dag_run is None or task is None:
        return False
    dag_id = (dag.dag_id if dag is not None else None) or dag_run.dag_id
    run_id, task_id = dag_run.run_id, task.task_id
    if dag_id is None or run_id is None or task_id is None:
        return False  # (a parent's job name, the job's name, or held until its DAG-run event)
    map_index, try_number = _map_and_try(ti)
    conf, outputs = dag_run.conf, event.outputs
    # every field first, as for a record: the index is touched only once nothing can raise
    declared = _outputs(outputs, task_id) if outputs else ()
    error = _error(facets) if facets.errorMessage is not None else None
    source_code = _source_code(job)
    conf_declared = _conf_declared(conf) if conf else ()
    target = index.run_for(dag_id, run_id)
    if target is not None:
        target.add_task_event(
            task_id,
            map_index,
            event_type,  # (a str: typed)
            try_number,
            event.eventTime or "",
            declared,
            error,
            source_code,
            conf_declared,
        )
    return True


def _decode_tolerant(line: bytes | str) -> LineageRecord | None:
    """The standard library's reading of an event the typed decoder did not take."""
    try:
        data = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise EventError(_short(str(exc))) from None
    except RecursionError:
        raise EventError("JSON nested too deeply") from None
    return decode_document(data)


def decode_document(data: Any) -> LineageRecord | None:
    """Extract a record from an already parsed event (tolerant of unexpected types)."""
    if not isinstance(data, Mapping):
        raise EventError("not a JSON object")
    try:
        return extract(View(data))
    except EventError:
        raise
    except (AttributeError, TypeError, ValueError) as exc:
        raise EventError(f"not shaped like an OpenLineage run event ({type(exc).__name__})") from None


def _short(message: str) -> str:
    return message if len(message) <= 120 else message[:117] + "..."


def extract(event: Any) -> LineageRecord | None:
    """Reduce a decoded event (typed struct, or :class:`View` without msgspec) to a record."""
    run, job, event_type = event.run, event.job, event.eventType
    if not event_type:
        return None  # a job or dataset event (OpenLineage 2): nothing about a run
    if type(event_type) is not str:
        event_type = as_str(event_type)  # (a number as text; an object or a list is no event type)
        if event_type is None:
            raise EventError("'eventType' is not text")
    if run is None or job is None:
        raise EventError("a run event needs both 'run' and 'job'")
    facets = run.facets or _EMPTY_FACETS
    job_facets = job.facets
    job_type_facet = job_facets.jobType if job_facets is not None else None
    job_type = job_type_facet.jobType if job_type_facet is not None else None
    if job_type == "DAG" or (job_type is None and facets.airflowDagRun is not None):
        return _dag_record(event, event_type, facets, job)
    return _task_record(event, event_type, facets, job)


def _dag_record(event: Any, event_type: str, facets: Any, job: Any) -> LineageRecord:
    info = facets.airflowDagRun
    dag_run = info.dagRun if info is not None else None
    dag = info.dag if info is not None else None
    # (as_str: the tolerant reader's ids and times may be numbers, objects or lists)
    dag_id = (
        as_str(dag.dag_id if dag is not None else None)
        or as_str(dag_run.dag_id if dag_run is not None else None)
        or as_str(job.name)
    )
    record = LineageRecord(
        kind="dag",
        event_type=event_type,
        dag_id=dag_id,
        run_id=as_str(dag_run.run_id) if dag_run is not None else None,
        event_time=as_str(event.eventTime) or "",
        ol_run_id=as_str(event.run.runId),
        announced=_announced(job),
        conf_declared=_conf_declared(dag_run.conf) if dag_run is not None else (),
        error=_error(facets),
    )
    state = facets.airflowState
    if state is not None:
        record.dag_run_state = as_str(state.dagRunState)
        tasks_state = state.tasksState
        if type(tasks_state) is not dict or not all(type(v) is str for v in tasks_state.values()):
            tasks_state = mapping(tasks_state)  # a View, or values other than strings
            tasks_state = {str(k): as_str(v) for k, v in tasks_state.items()} if tasks_state else None
        record.tasks_state = tasks_state or None
    return record


def _task_record(event: Any, event_type: str, facets: Any, job: Any) -> LineageRecord:
    airflow, parent = facets.airflow, facets.parent
    if airflow is not None:
        dag, dag_run, task, ti = airflow.dag, airflow.dagRun, airflow.task, airflow.taskInstance
    else:
        dag = dag_run = task = ti = None
    # (as_str: the tolerant reader's ids and times may be numbers, objects or lists)
    dag_id = as_str(dag.dag_id if dag is not None else None) or as_str(
        dag_run.dag_id if dag_run is not None else None
    )
    if dag_id is None and parent is not None and parent.job is not None:
        dag_id = as_str(parent.job.name)
    task_id = as_str(task.task_id) if task is not None else None
    if task_id is None:
        task_id = _task_from_job_name(as_str(job.name), dag_id)
    map_index, try_number = _map_and_try(ti)
    conf = dag_run.conf if dag_run is not None else None
    outputs = event.outputs
    # (positional: a record is built per event; the order of LineageRecord's fields)
    return LineageRecord(
        "task",
        event_type,
        dag_id,
        as_str(dag_run.run_id) if dag_run is not None else None,
        task_id,
        map_index,
        try_number,
        as_str(event.eventTime) or "",
        _outputs(outputs, task_id) if outputs else (),
        None,
        None,
        None,
        _conf_declared(conf) if conf else (),
        _error(facets) if facets.errorMessage is not None else None,
        as_str(event.run.runId),
        as_str(parent.run.runId) if parent is not None and parent.run is not None else None,
        _source_code(job),
    )


def _map_and_try(ti: Any) -> tuple[int, int]:
    """The ``taskInstance`` facet's map index (-1: not mapped) and try number (0: unknown)."""
    if ti is None:
        return -1, 0
    map_index, try_number = ti.map_index, ti.try_number
    map_index = map_index if type(map_index) is int else as_int(map_index, -1)
    return map_index, try_number if type(try_number) is int else as_int(try_number, 0)


def _source_code(job: Any) -> str | None:
    """The task's ``sourceCode`` job facet when it names a VM tool (kept only then)."""
    facets = job.facets
    facet = facets.sourceCode if facets is not None else None
    code = facet.sourceCode if facet is not None else None
    return code[:65536] if type(code) is str and mentions_vm_tool(code) else None


def _task_from_job_name(job_name: str | None, dag_id: str | None) -> str | None:
    if not job_name:
        return None
    if dag_id and job_name.startswith(dag_id + "."):
        return job_name[len(dag_id) + 1 :]
    return job_name.rpartition(".")[2] or None


def _outputs(outputs: Any, task_id: str | None) -> tuple[DeclaredDomain, ...]:
    found = []
    for dataset in outputs:
        if type(dataset) is dict:
            dataset = View(dataset)
        namespace = as_str(dataset.namespace) or ""
        if not namespace[:10].lower().startswith("libvirt://"):
            continue
        name = as_str(dataset.name) or ""
        facets = dataset.facets
        if _TYPED_FACETS and isinstance(facets, _TYPED_FACETS):
            # typed: the facet was decoded alone; straight to the cached constructor
            facet = getattr(facets, "libvirt_domain", None)
            state = facet.expectedState if facet is not None else None
            declared = declared_from_state(namespace, name, state, task_id)
        else:
            declared = declared_from_dataset(namespace, name, _dataset_facets(facets), task_id)
        if declared is not None:
            found.append(declared)
    return tuple(found)


def _dataset_facets(facets: Any) -> dict[str, Any] | None:
    """The dataset's facets as a dict (typed: only the ``libvirtDomain`` facet was decoded)."""
    if facets is None or isinstance(facets, View | dict):
        return mapping(facets)
    facet = facets.libvirt_domain
    return {FACET_NAME: {"expectedState": facet.expectedState}} if facet is not None else None


def _announced(job: Any) -> dict[str, tuple[str | None, bool]] | None:
    facet = job.facets.airflow if job.facets is not None else None
    tasks = facet.tasks if facet is not None else None
    if tasks is None:
        return None
    if isinstance(tasks, View):
        tasks = {k: View(v) if isinstance(v, Mapping) else v for k, v in tasks.data.items()}
    announced: dict[str, tuple[str | None, bool]] = {}
    for task_id, info in tasks.items():
        if info is None or not hasattr(info, "operator"):
            announced[str(task_id)] = (None, True)
            continue
        announced[str(task_id)] = (as_str(info.operator), info.emits_ol_events is not False)
    return announced


def _conf_declared(conf: Any) -> tuple[DeclaredDomain, ...]:
    if conf is None:
        return ()
    if is_raw(conf):
        raw = bytes(conf)
        if len(raw) <= 2 or (_PARAM_KEY not in raw and b"\\" not in raw):
            return ()  # "{}" or a conf without the key (an escaped key has a backslash): nothing declared
    data = mapping(conf)
    if not data or PARAM_KEY not in data:
        return ()
    try:
        return tuple(declarations_from_params(data[PARAM_KEY]))
    except DomainURIError:
        return ()


def _error(facets: Any) -> str | None:
    error = facets.errorMessage
    return as_str(error.message) if error is not None else None
