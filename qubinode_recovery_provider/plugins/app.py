"""The recovery UI: a FastAPI app the API server mounts under :data:`URL_PREFIX`.

Pages (server-rendered, Jinja2) and the JSON API read the same data (:mod:`.reads`):

==========================================  ============================================================
``GET /incidents``, ``/api/incidents``      incidents; filters ``dag_id``, ``category``, ``state``,
                                            ``since``, ``until`` (ISO times, on last seen); ``page``,
                                            ``per_page``
``GET /incidents/{id}``, ``/api/incidents/{id}``  one incident (number or fingerprint); ``verbose=true``
                                            shows every action, command and manual step
``GET /task``                               the task-instance view: the incident of ``dag_id`` /
                                            ``task_id`` (``run_id``) or a "no diagnosis" page
``GET /findings``, ``/api/findings``        shadow findings; filters ``state``, ``type``, ``dag_id``,
                                            ``resource``
``POST /api/findings/{id}/state``           ``{"state": "acknowledged" | "resolved" | "open",
                                            "note": "..."}`` (edit permission, JSON only)
``GET /patterns``, ``/api/patterns``        top fingerprints, drafts for unexplained failures
==========================================  ============================================================

Every route depends on :mod:`.access` (Airflow's auth manager).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request, status
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, Field

from qubinode_recovery_provider.plugins import reads
from qubinode_recovery_provider.plugins.access import Editor, Reader  # noqa: TC001 - FastAPI reads them
from qubinode_recovery_provider.store.queries import FindingFilter, IncidentFilter

URL_PREFIX = "/qubinode-recovery"
MAX_PER_PAGE = 200
MAX_PAGE = 100_000

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE)]
Text = Annotated[str | None, Query(max_length=250)]
Key = Annotated[str, PathParam(max_length=250)]


class FindingChange(BaseModel):
    """A change of a finding's state."""

    state: Literal["acknowledged", "resolved", "open"]
    note: str | None = Field(default=None, max_length=1000)


def _ledger() -> Any:
    from qubinode_recovery_provider import runtime

    return runtime.current().ledger


def _blank(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _when(value: str | None, name: str) -> datetime | None:
    """An ISO date or time (UTC unless it says otherwise); 400 with one line when it is not one."""
    text = _blank(value)
    if text is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST, f"{name}: not an ISO date or time: {text[:40]!r}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


def incident_filter(
    dag_id: Text = None, category: Text = None, state: Text = None, since: Text = None, until: Text = None
) -> IncidentFilter:
    """The incident filters of a request (query parameters; empty ones are ignored)."""
    return IncidentFilter(
        state=_blank(state),
        root_cause=_blank(category),
        dag_id=_blank(dag_id),
        since=_when(since, "since"),
        until=_when(until, "until"),
    )


def finding_filter(
    state: Text = None,
    type: Text = None,
    dag_id: Text = None,
    resource: Text = None,
) -> FindingFilter:
    """The finding filters of a request (query parameters; empty ones are ignored)."""
    return FindingFilter(
        state=_blank(state), finding_type=_blank(type), dag_id=_blank(dag_id), resource=_blank(resource)
    )


@dataclass(frozen=True)
class Paging:
    """Which page of a list a request asks for."""

    page: int
    per_page: int


def paging(page: Page = 1, per_page: PerPage = 50) -> Paging:
    """The ``page`` and ``per_page`` query parameters."""
    return Paging(page, per_page)


Incidents = Annotated[IncidentFilter, Depends(incident_filter)]
Findings = Annotated[FindingFilter, Depends(finding_filter)]
Paged = Annotated[Paging, Depends(paging)]


def _render(request: Request, template: str, **values: Any) -> HTMLResponse:
    """A page; ``base`` is this app's path, ``airflow`` the UI's (both behind any proxy prefix)."""
    base = request.scope.get("root_path", "").rstrip("/") or URL_PREFIX
    airflow = base.removesuffix(URL_PREFIX)
    html = _TEMPLATES.get_template(template).render(
        base=base, airflow=airflow, query=dict(request.query_params), **values
    )
    return HTMLResponse(html)


def _incident_key(key: str) -> str | int:
    return int(key) if key.isdigit() else key


def _found(data: dict[str, Any] | None, what: str) -> dict[str, Any]:
    if data is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} in the ledger")
    return data


def create_app() -> FastAPI:
    """The plugin's app (routes in :func:`_add_api`, :func:`_add_pages`)."""
    app = FastAPI(
        title="Qubinode Recovery", docs_url=None, redoc_url=None, openapi_url=None
    )  # no anonymous route
    _add_api(app)
    _add_pages(app)
    return app


def _add_api(app: FastAPI) -> None:
    @app.get("/api/incidents")
    def api_incidents(_user: Reader, where: Incidents, paged: Paged) -> dict[str, Any]:
        return reads.incidents(_ledger(), where, paged.page, paged.per_page)

    @app.get("/api/incidents/{key}")
    def api_incident(_user: Reader, key: Key, verbose: bool = False) -> dict[str, Any]:
        return _found(reads.incident(_ledger(), _incident_key(key), verbose=verbose), "such incident")

    @app.get("/api/findings")
    def api_findings(_user: Reader, where: Findings, paged: Paged) -> dict[str, Any]:
        return reads.findings(_ledger(), where, paged.page, paged.per_page)

    @app.post("/api/findings/{finding_id}/state")
    def api_change_finding(
        user: Editor,
        finding_id: Annotated[int, PathParam(ge=1, le=2**63 - 1)],
        change: Annotated[FindingChange, Body()],
    ) -> dict[str, Any]:
        note = change.note or f"by {user.get_name()} in the Airflow UI"
        if not _ledger().set_finding_state(finding_id, change.state, note):
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such finding in the ledger")
        return _found(reads.finding(_ledger(), finding_id), "such finding")

    @app.get("/api/patterns")
    def api_patterns(_user: Reader) -> dict[str, Any]:
        from qubinode_recovery_provider import runtime

        return reads.patterns(_ledger(), runtime.current().analyzer)


def _add_pages(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def home(request: Request, _user: Reader) -> RedirectResponse:
        base = request.scope.get("root_path", "").rstrip("/")
        return RedirectResponse(f"{base}/incidents", status.HTTP_303_SEE_OTHER)

    @app.get("/incidents", response_class=HTMLResponse, include_in_schema=False)
    def incidents_page(request: Request, _user: Reader, where: Incidents, paged: Paged) -> HTMLResponse:
        data = reads.incidents(_ledger(), where, paged.page, paged.per_page)
        return _render(request, "incidents.html", data=data)

    @app.get("/incidents/{key}", response_class=HTMLResponse, include_in_schema=False)
    def incident_page(request: Request, _user: Reader, key: Key, verbose: bool = False) -> HTMLResponse:
        data = _found(reads.incident(_ledger(), _incident_key(key), verbose=verbose), "such incident")
        return _render(request, "incident.html", data=data)

    @app.get("/task", response_class=HTMLResponse, include_in_schema=False)
    def task_view(
        request: Request,
        _user: Reader,
        dag_id: Annotated[str, Query(max_length=250)],
        task_id: Annotated[str, Query(max_length=250)],
        run_id: Text = None,
    ) -> HTMLResponse:
        found = reads.task_incident(_ledger(), dag_id, task_id, _blank(run_id))
        if found is None:
            where = reads.redacted({"dag_id": dag_id, "task_id": task_id, "run_id": run_id})
            return _render(request, "no_diagnosis.html", where=where)
        data = _found(reads.incident(_ledger(), found), "such incident")
        return _render(request, "incident.html", data=data)

    @app.get("/findings", response_class=HTMLResponse, include_in_schema=False)
    def findings_page(request: Request, _user: Reader, where: Findings, paged: Paged) -> HTMLResponse:
        data = reads.findings(_ledger(), where, paged.page, paged.per_page)
        return _render(request, "findings.html", data=data)

    @app.get("/patterns", response_class=HTMLResponse, include_in_schema=False)
    def patterns_page(request: Request, _user: Reader) -> HTMLResponse:
        from qubinode_recovery_provider import runtime

        return _render(request, "patterns.html", data=reads.patterns(_ledger(), runtime.current().analyzer))
