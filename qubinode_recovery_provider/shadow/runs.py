"""Finished DAG runs and their task instances: from Airflow's REST API v2, or from a file of its JSON.

:class:`AirflowRunsSource` reads only what finished inside the scan window (the watermark): the
successful runs through ``GET /api/v2/dags/~/dagRuns`` with keyset (cursor) pagination, their task
instances through the batch endpoint ``POST /api/v2/dags/~/dagRuns/~/taskInstances/list`` (a few dozen
runs per request, never one request per run), and, once per DAG, the DAG's default params (for the
``qubinode_vm`` convention). It calls the API through the provider's one client
(:class:`~qubinode_recovery_provider.airflow_api.AirflowAPIClient`: a bearer token, or a JWT from
``POST /auth/token``; a timeout on every request; reads tried again after an unavailable answer).

:class:`RunsFileSource` reads the same JSON from a file, so a scan can run from local sources only:
a REST collection response (``{"dag_runs": [...]}``, ``{"task_instances": [...]}``, or both keys in
one object, plus an optional ``"dags": [{"dag_id": ..., "params": {...}}]``), a list of them, or JSON
lines of pages or of single run / task-instance objects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.shadow.contracts import mentions_vm_tool
from qubinode_recovery_provider.shadow.domains import PARAM_KEY
from qubinode_recovery_provider.shadow.inference import OPT_OUT_PARAM, rendered_subset
from qubinode_recovery_provider.shadow.jsonview import View, as_int, as_str, is_raw, mapping, msgspec
from qubinode_recovery_provider.shadow.records import RunRecord, SourceReport, TaskRecord

if TYPE_CHECKING:  # (httpx, imported with the client, is not needed to read a runs file)
    from qubinode_recovery_provider.airflow_api import AirflowAPIClient


class RunsSourceError(RuntimeError):
    """The runs could not be read at all (the scan cannot go on without them)."""


# --- decoding -----------------------------------------------------------------------------------

if msgspec is not None:

    class _RunIn(msgspec.Struct):
        dag_id: str | None = None
        dag_run_id: str | None = None
        state: str | None = None
        end_date: str | None = None
        start_date: str | None = None
        run_type: str | None = None
        conf: msgspec.Raw = msgspec.Raw()

    class _TaskIn(msgspec.Struct):
        dag_id: str | None = None
        dag_run_id: str | None = None
        task_id: str | None = None
        map_index: int = -1
        state: str | None = None
        try_number: int = 0
        operator: str | None = None
        end_date: str | None = None
        rendered_fields: msgspec.Raw = msgspec.Raw()

    class _DagIn(msgspec.Struct):
        dag_id: Any = None
        params: msgspec.Raw = msgspec.Raw()
        tags: Any = None

    class _Page(msgspec.Struct):
        dag_runs: list[_RunIn] | None = None
        task_instances: list[_TaskIn] | None = None
        dags: list[_DagIn] | None = None
        next_cursor: Any = None
        total_entries: Any = None

    _PAGES = msgspec.json.Decoder(_Page | list[_Page])
    _TYPED_TASK: Any = _TaskIn
    _TYPED_RUN: Any = _RunIn
else:  # pragma: no cover
    _PAGES = None
    _TYPED_TASK = _TYPED_RUN = type(None)


_READ_KEYS = (PARAM_KEY, OPT_OUT_PARAM)


_READ_KEYS_RAW = tuple(key.encode() for key in _READ_KEYS)


def _conf_subset(conf: Any) -> dict[str, Any]:
    """Only the part of a run's conf (or a DAG's params) the scan reads (``qubinode_vm`` and
    ``qubinode_infer_vms``)."""
    if conf is None:
        return {}
    if is_raw(conf):  # undecoded: most confs name neither key (an escaped key has a backslash)
        raw = bytes(conf)
        if b"\\" not in raw and not any(key in raw for key in _READ_KEYS_RAW):
            return {}
    data = mapping(conf) if not isinstance(conf, dict) else conf
    return {key: data[key] for key in _READ_KEYS if key in data} if data else {}


def _rendered(fields: Any) -> dict[str, str] | None:
    """A task's rendered template fields, kept only when one names a VM tool (checked on the raw
    bytes first, so the fields of other tasks are never decoded)."""
    if fields is None:
        return None
    if is_raw(fields) and not mentions_vm_tool(bytes(fields)):
        return None
    return rendered_subset(mapping(fields))


def _as_object(item: Any) -> Any:
    """A dict as a :class:`View`, a struct or View as it is; ``None`` for anything that is not an object
    (a number, a string, a list where a run or a task instance should be)."""
    if isinstance(item, dict):
        return View(item)
    if item is None or isinstance(item, str | bytes | int | float | list | tuple):
        return None
    return item


def run_from(item: Any) -> RunRecord | None:
    """A :class:`RunRecord` from a DAGRunResponse (struct, View or dict); None when it is not one."""
    if type(item) is _TYPED_RUN:  # typed: no conversions needed
        if not item.dag_id or not item.dag_run_id:
            return None
        return RunRecord(
            item.dag_id,
            item.dag_run_id,
            item.state or "",
            item.end_date,
            item.start_date,
            item.run_type,
            _conf_subset(item.conf),
        )
    item = _as_object(item)
    if item is None:
        return None
    dag_id, run_id = as_str(item.dag_id), as_str(item.dag_run_id)
    if not dag_id or not run_id:
        return None
    return RunRecord(
        dag_id=dag_id,
        run_id=run_id,
        state=as_str(item.state) or "",
        end_date=as_str(item.end_date),
        start_date=as_str(item.start_date),
        run_type=as_str(item.run_type),
        conf=_conf_subset(item.conf),
    )


def task_from(item: Any) -> tuple[tuple[str, str], TaskRecord] | None:
    """``((dag_id, run_id), TaskRecord)`` from a TaskInstanceResponse (struct, View or dict)."""
    if type(item) is _TYPED_TASK:  # typed: no conversions needed
        if not item.dag_id or not item.dag_run_id or not item.task_id:
            return None
        record = TaskRecord(
            item.task_id,
            item.map_index,
            item.state,
            item.try_number,
            item.operator,
            item.end_date,
            _rendered(item.rendered_fields),
        )
        return (item.dag_id, item.dag_run_id), record
    item = _as_object(item)
    if item is None:
        return None
    dag_id, run_id, task_id = as_str(item.dag_id), as_str(item.dag_run_id), as_str(item.task_id)
    if not dag_id or not run_id or not task_id:
        return None
    return (dag_id, run_id), TaskRecord(
        task_id=task_id,
        map_index=as_int(item.map_index, -1),
        state=as_str(item.state),
        try_number=as_int(item.try_number, 0),
        operator=as_str(item.operator),
        end_date=as_str(item.end_date),
        rendered=_rendered(item.rendered_fields),
    )


def dag_tags_from(item: Any) -> tuple[str, tuple[str, ...]] | None:
    """``(dag_id, tags)`` from a DAG details object (tags as ``{"name": ...}`` objects or strings)."""
    item = _as_object(item)
    if item is None or not as_str(item.dag_id):
        return None
    tags = item.tags if isinstance(item.tags, list) else []
    names = [as_str(t.get("name")) if isinstance(t, dict) else as_str(t) for t in tags]
    return str(as_str(item.dag_id)), tuple(n for n in names if n)


def dag_params_from(item: Any) -> tuple[str, dict[str, Any]] | None:
    """``(dag_id, {"qubinode_vm": value})`` from a DAG details object, when it declares the param."""
    item = _as_object(item)
    if item is None:
        return None
    dag_id = as_str(item.dag_id)
    params = mapping(item.params)
    subset = {key: params[key] for key in _READ_KEYS if key in params} if params else {}
    if not dag_id or not subset:
        return None
    return dag_id, subset


# --- assembling runs ----------------------------------------------------------------------------


class RunCollector:
    """Joins runs, task instances and DAG params, whatever order they arrive in."""

    def __init__(self, since: datetime | None = None, until: datetime | None = None) -> None:
        self.since = since
        self.until = until
        self.runs: dict[tuple[str, str], RunRecord] = {}
        self.tasks: dict[tuple[str, str], list[TaskRecord]] = {}
        self.dag_params: dict[str, dict[str, Any]] = {}
        self.dag_tags: dict[str, tuple[str, ...]] = {}
        self.report = SourceReport("runs")

    def add_page(self, page: Any) -> None:
        for item in _items(page, "dag_runs"):
            self.add_run(item)
        for item in _items(page, "task_instances"):
            self.add_task(item)
        for item in _items(page, "dags"):
            self.add_dag(item)

    def add_dag(self, item: Any) -> None:
        """One DAG's details: its params (``qubinode_vm``, ``qubinode_infer_vms``) and tags."""
        found = dag_params_from(item)
        if found:
            self.dag_params[found[0]] = found[1]
        tags = dag_tags_from(item)
        if tags:
            self.dag_tags[tags[0]] = tags[1]

    def add_run(self, item: Any) -> None:
        run = run_from(item)
        if run is None:
            self.report.skipped += 1
            return
        if not _in_window(run.end_date, self.since, self.until):
            return
        self.runs[run.key] = run

    def add_task(self, item: Any) -> None:
        found = task_from(item)
        if found is None:
            self.report.skipped += 1
            return
        self.tasks.setdefault(found[0], []).append(found[1])

    def result(self, finished_only: bool = True) -> list[RunRecord]:
        """The runs (successful ones when ``finished_only``), with their tasks and DAG params."""
        runs = []
        for key, run in self.runs.items():
            if finished_only and run.state != "success":
                continue
            run.tasks = self.tasks.get(key)
            run.dag_params = self.dag_params.get(run.dag_id)
            run.dag_tags = self.dag_tags.get(run.dag_id)
            runs.append(run)
        self.report.items = len(runs)
        return runs


def _items(page: Any, key: str) -> Iterable[Any]:
    value = getattr(page, key, None)
    return value if isinstance(value, list) else ()


def parse_time(value: str | None) -> datetime | None:
    """An ISO timestamp (``Z`` accepted) as an aware datetime; None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _in_window(end_date: str | None, since: datetime | None, until: datetime | None) -> bool:
    if since is None and until is None:
        return True
    ended = parse_time(end_date)
    if ended is None:
        return False
    return (since is None or ended >= since) and (until is None or ended < until)


# --- the file source ----------------------------------------------------------------------------


class RunsFileSource:
    """Runs and task instances from a file of REST API JSON (see the module docstring).

    :param path: the JSON or JSON-lines file
    :param pages: the file already decoded by :func:`decode_pages` (the CLI's input check); used by
        the first :meth:`fetch` instead of reading the file again
    """

    name = "runs file"

    def __init__(self, path: str | Path, pages: list[Any] | None = None) -> None:
        self.path = Path(path)
        self.report = SourceReport(self.name)
        self._pages_read = pages

    def __repr__(self) -> str:
        return f"RunsFileSource({str(self.path)!r})"

    @property
    def watermark_key(self) -> str:
        """The key of this file's watermark in the ledger."""
        return f"runs-file:{self.path.resolve()}"

    def fetch(self, since: datetime | None = None, until: datetime | None = None) -> list[RunRecord]:
        """The successful runs in the file that ended in ``[since, until)`` (all when both are None)."""
        collector = RunCollector(since, until)
        pages: Iterable[Any] | None
        pages, self._pages_read = self._pages_read, None
        if pages is None:
            try:
                content = self.path.read_bytes()
            except OSError as exc:
                raise RunsSourceError(f"cannot read runs file {self.path}: {exc.strerror or exc}") from None
            pages = self._pages(content, collector.report)
        for page in pages:
            collector.add_page(page)
        runs = collector.result()
        self.report = collector.report
        return runs

    def _pages(self, content: bytes, report: SourceReport) -> Iterator[Any]:
        document = _whole_document(content)
        if document is not None:
            yield from document
            return
        for number, line in enumerate(content.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except (ValueError, RecursionError) as exc:
                report.skipped += 1
                why = "nested too deeply" if isinstance(exc, RecursionError) else "not JSON"
                report.warn(f"{self.path}:{number}: {why}")
                continue
            yield _classify(data)


def decode_pages(content: bytes | str) -> list[Any] | None:
    """The file as typed REST pages, or None when msgspec is missing or the content is not one JSON
    document of pages (a list of them, or one) whose runs, task instances and DAGs are objects."""
    if _PAGES is None:
        return None
    try:
        decoded = _PAGES.decode(content)
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):  # (skipped levels count too)
        return None
    return decoded if isinstance(decoded, list) else [decoded]


def _whole_document(content: bytes) -> list[Any] | None:
    pages = decode_pages(content)
    if pages is not None:
        return pages
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        return None  # read line by line: each bad line is a counted warning
    items = data if isinstance(data, list) else [data]
    return [_classify(item) for item in items]


def _classify(data: Any) -> Any:
    """A page, or a single run or task-instance object wrapped as a page."""
    if not isinstance(data, dict):
        return View({})
    if any(k in data for k in ("dag_runs", "task_instances", "dags")):
        return View(data)
    if "task_id" in data:
        return View({"task_instances": [data]})
    if "dag_run_id" in data:
        return View({"dag_runs": [data]})
    return View({})


# --- the REST API source ------------------------------------------------------------------------


class AirflowRunsSource:
    """Finished runs from Airflow's REST API v2, through the provider's one API client.

    :param client: the client (:class:`~qubinode_recovery_provider.airflow_api.AirflowAPIClient`; in
        Airflow, ``AirflowApiHook().get_client()``); the caller closes it
    :param page_size: page size (at most the server's ``[api] maximum_page_limit``)
    :param runs_per_batch: runs whose task instances are fetched in one batch request
    :param resolve_dag_params: read each DAG's default params once (``qubinode_vm`` convention)
    """

    name = "airflow api"

    def __init__(
        self,
        client: AirflowAPIClient,
        *,
        page_size: int = 100,
        runs_per_batch: int = 50,
        resolve_dag_params: bool = True,
    ) -> None:
        from qubinode_recovery_provider.airflow_api import AirflowAPIClient

        if not isinstance(client, AirflowAPIClient):
            raise TypeError(
                "AirflowRunsSource takes an AirflowAPIClient (AirflowApiHook(conn_id).get_client(), or "
                f"AirflowAPIClient(APISettings.from_url(url))), not {type(client).__name__}"
            )
        self.client = client
        self.page_size = page_size
        self.runs_per_batch = runs_per_batch
        self.resolve_dag_params = resolve_dag_params
        self.report = SourceReport(self.name)

    @property
    def base_url(self) -> str:
        """The API server's URL (without credentials)."""
        return self.client.settings.base_url

    def __repr__(self) -> str:
        return f"AirflowRunsSource({self.base_url!r})"

    @property
    def watermark_key(self) -> str:
        """The key of this API server's watermark in the ledger (the latest run end date read)."""
        return f"runs:{self.base_url}"

    def fetch(self, since: datetime | None = None, until: datetime | None = None) -> list[RunRecord]:
        """The successful runs that ended in ``[since, until)``, with their task instances.

        :raises RunsSourceError: when the API cannot be read (unreachable, refused credentials, errors).
        """
        from qubinode_recovery_provider.airflow_api import AirflowAPIError, AirflowAPIUnavailable

        collector = RunCollector(since, until)
        try:
            self._read(collector, since, until)
        except AirflowAPIUnavailable as exc:
            raise RunsSourceError(f"Airflow API at {self.base_url} unusable: {exc}") from None
        except AirflowAPIError as exc:
            raise RunsSourceError(f"Airflow API at {self.base_url}: {exc}") from None
        result = collector.result()
        self.report = collector.report
        return result

    def _read(self, collector: RunCollector, since: datetime | None, until: datetime | None) -> None:
        runs = self.client.iter_dag_runs(
            state="success", end_date_gte=since, end_date_lt=until, page_size=self.page_size
        )
        for item in runs:
            collector.add_run(item)
        found = list(collector.runs.values())
        self._task_instances(found, collector)
        if self.resolve_dag_params:
            self._dag_params({r.dag_id for r in found}, collector)

    def task_log(self, run: RunRecord, task: TaskRecord) -> str | None:
        """The log of ``task``'s last try, or None when the API has none (404) or refuses (a warning)."""
        from qubinode_recovery_provider.airflow_api import AirflowAPIError

        try:
            return self.client.get_task_log(
                run.dag_id, run.run_id, task.task_id, max(1, task.try_number), task.map_index
            )
        except AirflowAPIError as exc:
            if exc.status_code != 404:  # 404: no log kept for that try, nothing to say
                self.report.warn(f"{self.name}: log of {run.dag_id}/{task.task_id} unreadable: {exc}")
            return None

    def _task_instances(self, runs: Sequence[RunRecord], collector: RunCollector) -> None:
        """The task instances of ``runs``, ``runs_per_batch`` runs a request; the batch endpoint matches
        DAGs and run ids independently, so what belongs to other runs is dropped here."""
        wanted = [r for r in runs if r.state == "success"]
        for start in range(0, len(wanted), self.runs_per_batch):
            chunk = wanted[start : start + self.runs_per_batch]
            keys = {r.key for r in chunk}
            items = self.client.iter_task_instances(
                dag_ids=sorted({r.dag_id for r in chunk}),
                dag_run_ids=sorted({r.run_id for r in chunk}),
                page_size=self.page_size,
            )
            for item in items:
                if not isinstance(item, dict) or _task_key(item) in keys:
                    collector.add_task(item)  # a non-object is counted as skipped

    def _dag_params(self, dag_ids: set[str], collector: RunCollector) -> None:
        from qubinode_recovery_provider.airflow_api import AirflowAPIError

        for dag_id in sorted(dag_ids):
            try:
                details = self.client.get_dag_details(dag_id)
            except AirflowAPIError as exc:
                if exc.status_code is None:
                    raise  # no answer at all: the scan cannot go on
                collector.report.warn(
                    f"{self.name}: params of DAG {dag_id} unreadable (HTTP {exc.status_code})"
                )
                continue
            collector.add_dag(details)


def _task_key(item: dict[str, Any]) -> tuple[str | None, str | None]:
    return as_str(item.get("dag_id")), as_str(item.get("dag_run_id"))
