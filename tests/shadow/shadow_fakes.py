"""Local stand-ins, at the HTTP boundary, for the services the scan talks to: Marquez and Airflow's
REST API. Both listen on 127.0.0.1 only and answer with JSON shaped by the published specs (Marquez's
openapi.yml; Airflow's v2 REST API), so the real HTTP clients run unchanged against them.

``MarquezServer`` ingests real OpenLineage events the way Marquez does (namespaces, jobs with their
latest facets, one run per OpenLineage run id with its state, datasets with their facets, and the raw
events) and serves ``/api/v1`` with ``limit``/``offset`` pagination; ``/events/lineage`` filters and
sorts as Marquez's ``OpenLineageDao`` does (``event_time >= after AND event_time < before``, by event
time, descending unless ``sortDirection=asc``; defaults ``after`` 1970, ``before`` 2030).
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Handler = Callable[[str, str, dict[str, list[str]], Any, dict[str, str]], tuple[int, Any]]


@dataclass
class Served:
    url: str
    requests: list[tuple[str, str]] = field(default_factory=list)


@contextmanager
def serve(handler: Handler) -> Iterator[Served]:
    """Serve ``handler(method, path, query, body, headers) -> (status, json)`` on 127.0.0.1."""
    served = Served(url="")

    class _Handler(BaseHTTPRequestHandler):
        def _handle(self, method: str) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            served.requests.append((method, parts.path))
            status, payload = handler(method, parts.path, parse_qs(parts.query), body, dict(self.headers))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_POST(self) -> None:
            self._handle("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    served.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        server.shutdown()
        server.server_close()


def _without_nulls(value: Any) -> Any:
    """Marquez omits absent values; the spec's schemas have no nullable fields."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# --- Marquez -------------------------------------------------------------------------------------

_STATE = {
    "START": "RUNNING",
    "RUNNING": "RUNNING",
    "COMPLETE": "COMPLETED",
    "FAIL": "FAILED",
    "ABORT": "ABORTED",
}
NOW = "2026-01-01T00:00:00Z"


class MarquezServer:
    """An in-memory Marquez fed with OpenLineage events."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.jobs: dict[tuple[str, str], dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.run_jobs: dict[str, tuple[str, str]] = {}
        self.datasets: dict[tuple[str, str], dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.event_queries: list[dict[str, str]] = []  # the query of each /events/lineage request
        self.events_served = 0
        self.fail_paths: set[str] = set()
        for event in events:
            self.ingest(event)

    def _namespace(self, name: str, at: str) -> None:
        self.namespaces.setdefault(
            name,
            {"name": name, "createdAt": at, "updatedAt": at, "ownerName": "anonymous", "description": ""},
        )["updatedAt"] = at

    def ingest(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        at = event["eventTime"]
        job_ns, job_name = event["job"]["namespace"], event["job"]["name"]
        self._namespace(job_ns, at)
        job = self.jobs.setdefault((job_ns, job_name), self._new_job(job_ns, job_name, at))
        job["updatedAt"] = at
        job["facets"].update(event["job"].get("facets") or {})
        run_id = event["run"]["runId"]
        run = self.runs.setdefault(run_id, self._new_run(run_id, at))
        self.run_jobs[run_id] = (job_ns, job_name)
        run["updatedAt"] = at
        run["state"] = _STATE.get(event["eventType"], run["state"])
        run["facets"].update(event["run"].get("facets") or {})
        if event["eventType"] == "START":
            run["startedAt"] = at
        else:
            run["endedAt"] = at
        for output in event.get("outputs") or []:
            key = (output["namespace"], output["name"])
            self._namespace(output["namespace"], at)
            dataset = self.datasets.setdefault(key, self._new_dataset(*key, at))
            dataset["facets"].update(output.get("facets") or {})
            version = {
                "datasetVersionId": {"namespace": key[0], "name": key[1], "version": run_id},
                "facets": {},
            }
            if version not in run["outputDatasetVersions"]:
                run["outputDatasetVersions"].append(version)
        job["latestRun"] = run

    @staticmethod
    def _new_job(namespace: str, name: str, at: str) -> dict[str, Any]:
        return {
            "id": {"namespace": namespace, "name": name},
            "type": "BATCH",
            "name": name,
            "simpleName": name.rpartition(".")[2],
            "createdAt": at,
            "updatedAt": at,
            "namespace": namespace,
            "inputs": [],
            "outputs": [],
            "facets": {},
            "latestRuns": [],
        }

    @staticmethod
    def _new_run(run_id: str, at: str) -> dict[str, Any]:
        return {
            "id": run_id,
            "createdAt": at,
            "updatedAt": at,
            "state": "NEW",
            "args": {},
            "facets": {},
            "inputDatasetVersions": [],
            "outputDatasetVersions": [],
        }

    @staticmethod
    def _new_dataset(namespace: str, name: str, at: str) -> dict[str, Any]:
        return {
            "id": {"namespace": namespace, "name": name},
            "type": "DB_TABLE",
            "name": name,
            "physicalName": name,
            "createdAt": at,
            "updatedAt": at,
            "namespace": namespace,
            "sourceName": namespace,
            "fields": [],
            "tags": [],
            "facets": {},
            "deleted": False,
        }

    @staticmethod
    def _page(items: list[Any], query: dict[str, list[str]]) -> list[Any]:
        limit = int(query.get("limit", ["100"])[0])
        offset = int(query.get("offset", ["0"])[0])
        return items[offset : offset + limit]

    def handle(self, method: str, path: str, query: dict, body: Any, headers: dict) -> tuple[int, Any]:
        if path in self.fail_paths:
            return 500, {"code": 500, "message": "boom"}
        if not path.startswith("/api/v1/") or method != "GET":
            return 404, {"code": 404}
        parts = [unquote(p) for p in path[len("/api/v1/") :].split("/")]
        return self._route(parts, query)

    def _lineage_events(self, query: dict[str, list[str]]) -> dict[str, Any]:
        asked = {k: v[0] for k, v in query.items()}
        self.event_queries.append(asked)
        after = _instant(asked.get("after", "1970-01-01T00:00:00+00:00"))
        before = _instant(asked.get("before", "2030-01-01T00:00:00+00:00"))
        chosen = [e for e in self.events if after <= _instant(e["eventTime"]) < before]
        chosen.sort(key=lambda e: _instant(e["eventTime"]), reverse=asked.get("sortDirection") != "asc")
        page = self._page(chosen, query)
        self.events_served += len(page)
        return {"events": page, "totalCount": len(chosen)}

    def _route(self, parts: list[str], query: dict) -> tuple[int, Any]:
        if parts == ["events", "lineage"]:
            return 200, self._lineage_events(query)
        if parts == ["namespaces"]:
            return 200, {"namespaces": self._page(list(self.namespaces.values()), query)}
        if len(parts) == 3 and parts[0] == "namespaces" and parts[2] == "jobs":
            jobs = [_without_nulls(j) for (ns, _), j in sorted(self.jobs.items()) if ns == parts[1]]
            return 200, {"jobs": self._page(jobs, query), "totalCount": len(jobs)}
        if len(parts) == 3 and parts[0] == "namespaces" and parts[2] == "datasets":
            datasets = [d for (ns, _), d in sorted(self.datasets.items()) if ns == parts[1]]
            return 200, {"datasets": self._page(datasets, query), "totalCount": len(datasets)}
        if len(parts) == 5 and parts[0] == "namespaces" and parts[2] == "jobs" and parts[4] == "runs":
            key = (parts[1], parts[3])
            runs = [r for rid, r in self.runs.items() if self.run_jobs[rid] == key]
            runs.sort(key=lambda r: r["createdAt"], reverse=True)  # newest first, as Marquez lists them
            return 200, {"runs": self._page(runs, query)}
        return 404, {"code": 404, "message": "/".join(parts)}


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- Airflow REST API v2 -------------------------------------------------------------------------


class AirflowApiServer:
    """Airflow's REST API v2 as the shadow scan uses it, over runs and task instances given as the
    API returns them. ``cursor=False`` imitates a server without keyset pagination."""

    def __init__(
        self,
        dag_runs: list[dict[str, Any]],
        task_instances: list[dict[str, Any]],
        dag_params: dict[str, dict[str, Any]] | None = None,
        users: dict[str, str] | None = None,
        cursor: bool = True,
        page_limit: int = 100,
    ) -> None:
        self.dag_runs = dag_runs
        self.task_instances = task_instances
        self.dag_params = dag_params or {}
        self.users = users or {"admin": "secret"}
        self.cursor = cursor
        self.page_limit = page_limit
        self.tokens: set[str] = {"static-token"}

    def handle(self, method: str, path: str, query: dict, body: Any, headers: dict) -> tuple[int, Any]:
        if method == "POST" and path == "/auth/token":
            if self.users.get((body or {}).get("username")) != (body or {}).get("password"):
                return 401, {"detail": "Invalid credentials"}
            token = base64.urlsafe_b64encode(json.dumps(body).encode()).decode()
            self.tokens.add(token)
            return 201, {"access_token": token}
        auth = headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return 401, {"detail": "Not authenticated"}
        if method == "GET" and path == "/api/v2/dags/~/dagRuns":
            return 200, self._runs(query)
        if method == "POST" and path == "/api/v2/dags/~/dagRuns/~/taskInstances/list":
            return 200, self._task_instances(body or {})
        if method == "GET" and path.startswith("/api/v2/dags/") and path.endswith("/details"):
            dag_id = unquote(path.split("/")[4])
            return 200, {"dag_id": dag_id, "params": self.dag_params.get(dag_id, {})}
        return 404, {"detail": "Not Found"}

    def _runs(self, query: dict) -> dict[str, Any]:
        runs = [r for r in self.dag_runs if r["state"] in query.get("state", [r["state"]])]
        if "end_date_gte" in query:
            runs = [r for r in runs if _ts(r["end_date"]) >= _ts(query["end_date_gte"][0])]
        if "end_date_lt" in query:
            runs = [r for r in runs if _ts(r["end_date"]) < _ts(query["end_date_lt"][0])]
        limit = min(int(query.get("limit", ["50"])[0]), self.page_limit)
        if self.cursor and "cursor" in query:
            start = int(query["cursor"][0] or 0)
            page = runs[start : start + limit]
            more = start + limit < len(runs)
            return {
                "dag_runs": page,
                "total_entries": len(runs),
                "next_cursor": str(start + limit) if more else None,
                "previous_cursor": None,
            }
        offset = int(query.get("offset", ["0"])[0])
        return {"dag_runs": runs[offset : offset + limit], "total_entries": len(runs)}

    def _task_instances(self, body: dict[str, Any]) -> dict[str, Any]:
        dag_ids, run_ids = set(body.get("dag_ids") or ()), set(body.get("dag_run_ids") or ())
        tis = [
            t
            for t in self.task_instances
            if (not dag_ids or t["dag_id"] in dag_ids) and (not run_ids or t["dag_run_id"] in run_ids)
        ]
        offset, limit = (
            int(body.get("page_offset", 0)),
            min(int(body.get("page_limit", 100)), self.page_limit),
        )
        return {"task_instances": tis[offset : offset + limit], "total_entries": len(tis)}


def _ts(value: str) -> str:
    """ISO timestamps in one comparable form (``Z`` and ``+00:00`` alike)."""
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).isoformat()
