"""Lineage from Marquez's HTTP API: namespaces, their jobs, the jobs' runs, all paginated.

Marquez keeps one run per OpenLineage run (a task try or a DAG run) with its final state and the
merged run facets. Each run becomes the record of its last event (``COMPLETED`` -> ``COMPLETE``,
``FAILED`` -> ``FAIL``, ``ABORTED`` -> ``ABORT``), so the detector reads Marquez exactly like the file
transport. Jobs not updated since the scan window (minus ``lookback``) and jobs of DAGs outside the
window are skipped; runs are read newest first until a whole page is older than the window.

The expected state of a declared VM travels in the ``libvirtDomain`` facet of its dataset; Marquez keeps
dataset facets on the dataset, so the datasets of ``libvirt://`` namespaces are listed once per scan.

Incremental scans (a watermark from an earlier scan: the last event time seen per namespace) read the
raw OpenLineage events instead, through ``GET /api/v1/events/lineage`` with ``after`` (inclusive),
``before`` (exclusive), ``sortDirection=asc`` and ``limit``/``offset``: only the events from the
earlier of the watermark minus the overlap and the checked runs' earliest start minus the overlap. The
events are the same JSON the file transport writes, so they are decoded the same way. A Marquez
without that endpoint (404) is walked as above from the same moment.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from qubinode_recovery_provider.jsontext import loads as json_loads
from qubinode_recovery_provider.shadow.domains import FACET_NAME, namespace_host
from qubinode_recovery_provider.shadow.lineage import LineageIndex, RunKey
from qubinode_recovery_provider.shadow.olevents import EventError, decode_document
from qubinode_recovery_provider.shadow.watermarks import OVERLAP

_STATES = {
    "COMPLETED": "COMPLETE",
    "FAILED": "FAIL",
    "ABORTED": "ABORT",
    "RUNNING": "RUNNING",
    "NEW": "START",
}


if TYPE_CHECKING:
    import httpx


class MarquezError(RuntimeError):
    """Marquez answered with something other than the documented JSON."""


class MarquezLineageSource:
    """Marquez as a lineage source.

    :param base_url: Marquez's URL (``http://marquez:5000``; ``/api/v1`` is added unless present)
    :param namespaces: job namespaces to read (default: every namespace)
    :param timeout: seconds per HTTP request
    :param page_size: ``limit`` of each page
    :param lookback: jobs and runs last updated this long before the window are skipped
    :param api_key: sent as a Bearer token when set
    """

    name = "marquez"

    def __init__(
        self,
        base_url: str,
        namespaces: Collection[str] | None = None,
        timeout: float = 10.0,
        page_size: int = 100,
        lookback: timedelta = timedelta(days=1),
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = _api_root(base_url)
        self.namespaces = list(namespaces) if namespaces else None
        self.timeout = timeout
        self.page_size = page_size
        self.lookback = lookback
        self.api_key = api_key
        self.transport = transport
        self.requests = 0
        self._from: datetime | None = None
        self._now: datetime | None = None
        self._previous: dict[str, str] = {}
        self.last_event: dict[str, datetime] = {}
        self.resume_note: str | None = None

    @property
    def watermark_key(self) -> str:
        """The key of this server's watermark in the ledger."""
        return f"marquez:{self.base_url}"

    def resume(
        self, position: dict[str, Any] | None, from_time: datetime | None, now: datetime | None
    ) -> None:
        """Walk back only to ``from_time`` (the checked runs' earliest start minus the overlap) instead
        of the window minus ``lookback``; ``position`` holds the last event time seen per namespace."""
        self._from = from_time
        self._now = now or datetime.now(UTC)
        self._previous = dict((position or {}).get("namespaces") or {})
        if from_time is not None:
            self.resume_note = f"{self.name}: runs read back to {from_time.isoformat()} (incremental)"

    def events_after(self) -> datetime | None:
        """Where an incremental read starts: the earlier of the oldest watermark of the namespaces read
        minus :data:`~qubinode_recovery_provider.shadow.watermarks.OVERLAP` and the checked runs' start
        minus the overlap; None without a watermark (the first scan walks the jobs)."""
        names = self.namespaces or list(self._previous)
        marks = [_time(self._previous.get(n)) for n in names]
        if not marks or any(m is None for m in marks):
            return None
        after = min(m for m in marks if m is not None) - OVERLAP
        return min(after, self._from) if self._from is not None else after

    def position(self) -> dict[str, Any] | None:
        """The last event time seen per namespace (kept for namespaces not seen this time)."""
        seen = {ns: moment.isoformat() for ns, moment in self.last_event.items()}
        return {"namespaces": {**self._previous, **seen}}

    def __repr__(self) -> str:
        return f"MarquezLineageSource({self.base_url!r})"

    def read(self, wanted: Collection[RunKey] | None, since: datetime | None = None) -> LineageIndex:
        import httpx

        index = LineageIndex(wanted, name=self.name)
        cutoff = since - self.lookback if since is not None else None
        if self._from is not None:
            cutoff = self._from
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            with httpx.Client(
                base_url=self.base_url, timeout=self.timeout, headers=headers, transport=self.transport
            ) as client:
                self._read(client, index, cutoff)
        except (httpx.HTTPError, MarquezError, ValueError) as exc:
            index.report.available = False
            index.report.warn(f"{self.name}: {self.base_url} unusable: {_describe(exc)}")
        return index.finish()

    # --- traversal -------------------------------------------------------------------------------

    def _read(self, client: httpx.Client, index: LineageIndex, cutoff: datetime | None) -> None:
        after = self.events_after()
        if after is not None and self._read_events(client, index, after):
            self.resume_note = f"{self.name}: events after {after.isoformat()} (incremental)"
            return
        if after is not None:
            cutoff = min(cutoff, after) if cutoff is not None else after
        all_namespaces = [str(ns.get("name")) for ns in self._pages(client, "/namespaces", "namespaces")]
        states = self._expected_states(client, [n for n in all_namespaces if namespace_host(n)])
        job_namespaces = self.namespaces or [n for n in all_namespaces if not namespace_host(n)]
        for namespace in job_namespaces:
            path = f"/namespaces/{_quote(namespace)}/jobs"
            for job in self._pages(client, path, "jobs"):
                if self._wanted_job(job, index, cutoff):
                    for run in self._runs(client, namespace, job, cutoff):
                        self._seen(namespace, _run_time(run))
                        self._take(index, job, run, states)

    def _read_events(self, client: httpx.Client, index: LineageIndex, after: datetime) -> bool:
        """The events in ``[after, now + 1 day)``, oldest first; False when Marquez has no events API."""
        import httpx

        before = (self._now or datetime.now(UTC)) + timedelta(days=1)  # Marquez's default is 2030
        query = {"after": after.isoformat(), "before": before.isoformat(), "sortDirection": "asc"}
        try:
            for page in self._page_lists(client, "/events/lineage", "events", query):
                for event in page:
                    self._take_event(index, event)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code == 404 and not index.report.items:
                return False
            raise
        return True

    def _take_event(self, index: LineageIndex, event: dict[str, Any]) -> None:
        job = event.get("job")
        job = job if isinstance(job, dict) else {}
        namespace = str(job.get("namespace") or "")
        if self.namespaces and namespace not in self.namespaces:
            return
        self._seen(namespace, _time(event.get("eventTime")))
        self._add(index, event, f"event of job {job.get('name')}")

    def _seen(self, namespace: str, moment: datetime | None) -> None:
        if moment is not None and (namespace not in self.last_event or moment > self.last_event[namespace]):
            self.last_event[namespace] = moment

    def _take(
        self,
        index: LineageIndex,
        job: dict[str, Any],
        run: dict[str, Any],
        states: dict[tuple[str, str], str],
    ) -> None:
        self._add(index, _as_event(job, run, states), f"run {run.get('id')} of job {job.get('name')}")

    def _add(self, index: LineageIndex, event: dict[str, Any], what: str) -> None:
        try:
            record = decode_document(event)
        except EventError as exc:
            index.report.skipped += 1
            index.report.warn(f"{self.name}: {what} skipped: {exc}")
            return
        if record is not None:
            index.add(record)

    def _wanted_job(self, job: dict[str, Any], index: LineageIndex, cutoff: datetime | None) -> bool:
        name = str(job.get("name") or "")
        if index.wanted_dags is not None:
            dag_id = name.split(".", 1)[0]
            if dag_id not in index.wanted_dags and not any(
                name.startswith(d + ".") for d in index.wanted_dags
            ):
                return False
        if cutoff is None:
            return True
        latest = job.get("latestRun") or {}
        stamps = [_time(job.get("updatedAt")), _time(latest.get("updatedAt"))]
        known = [s for s in stamps if s is not None]
        return not known or max(known) >= cutoff

    def _runs(
        self, client: httpx.Client, namespace: str, job: dict[str, Any], cutoff: datetime | None
    ) -> Iterator[dict[str, Any]]:
        path = f"/namespaces/{_quote(namespace)}/jobs/{_quote(str(job.get('name')))}/runs"
        for page in self._page_lists(client, path, "runs"):
            fresh = [r for r in page if cutoff is None or (_run_time(r) or cutoff) >= cutoff]
            yield from fresh
            if cutoff is not None and not fresh:
                return

    def _expected_states(self, client: httpx.Client, namespaces: list[str]) -> dict[tuple[str, str], str]:
        states: dict[tuple[str, str], str] = {}
        for namespace in namespaces:
            path = f"/namespaces/{_quote(namespace)}/datasets"
            for dataset in self._pages(client, path, "datasets"):
                facet = (dataset.get("facets") or {}).get(FACET_NAME) or {}
                if isinstance(facet, dict) and facet.get("expectedState"):
                    states[(namespace, str(dataset.get("name")))] = str(facet["expectedState"])
        return states

    # --- pagination ------------------------------------------------------------------------------

    def _pages(self, client: httpx.Client, path: str, key: str) -> Iterator[dict[str, Any]]:
        for page in self._page_lists(client, path, key):
            yield from page

    def _page_lists(
        self, client: httpx.Client, path: str, key: str, query: dict[str, Any] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        offset = 0
        while True:
            body = self._get(client, path, {**(query or {}), "limit": self.page_size, "offset": offset})
            items = body.get(key)
            if not isinstance(items, list):
                raise MarquezError(f"GET {path}: response has no '{key}' list")
            yield [i for i in items if isinstance(i, dict)]
            offset += len(items)
            total = body.get("totalCount")
            if len(items) < self.page_size or (isinstance(total, int | float) and offset >= total):
                return

    def _get(self, client: httpx.Client, path: str, params: dict[str, Any]) -> dict[str, Any]:
        self.requests += 1
        response = client.get(path, params=params)
        response.raise_for_status()
        try:
            body = json_loads(response.content)
        except ValueError as exc:
            raise MarquezError(f"GET {path}: the answer is not JSON ({getattr(exc, 'msg', exc)})") from None
        if not isinstance(body, dict):
            raise MarquezError(f"GET {path}: expected a JSON object")
        return body


def _api_root(base_url: str) -> str:
    url = base_url.rstrip("/")
    return url if url.endswith("/api/v1") else url + "/api/v1"


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _run_time(run: dict[str, Any]) -> datetime | None:
    for key in ("endedAt", "updatedAt", "startedAt", "createdAt"):
        stamp = _time(run.get(key))
        if stamp is not None:
            return stamp
    return None


def _as_event(job: dict[str, Any], run: dict[str, Any], states: dict[tuple[str, str], str]) -> dict[str, Any]:
    """The OpenLineage event a Marquez run stands for (its last one)."""
    outputs = []
    for version in run.get("outputDatasetVersions") or []:
        ident = (version or {}).get("datasetVersionId") or {}
        namespace, name = str(ident.get("namespace") or ""), str(ident.get("name") or "")
        facets = (
            {FACET_NAME: {"expectedState": states[(namespace, name)]}} if (namespace, name) in states else {}
        )
        outputs.append({"namespace": namespace, "name": name, "facets": facets})
    state = str(run.get("state") or "").upper()
    return {
        "eventType": _STATES.get(state, state or "OTHER"),
        "eventTime": run.get("endedAt") or run.get("updatedAt") or run.get("startedAt") or "",
        "run": {"runId": run.get("id"), "facets": run.get("facets") or {}},
        "job": {
            "namespace": job.get("namespace"),
            "name": job.get("name"),
            "facets": job.get("facets") or {},
        },
        "outputs": outputs,
    }


def _describe(exc: BaseException) -> str:
    import httpx

    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {exc.request.url}"
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
