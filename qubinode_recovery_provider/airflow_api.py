"""A small client for the Airflow REST API v2: trigger and read DAG runs, clear task instances.

The address and credentials come from an Airflow connection (``[qubinode_recovery] recovery_conn_id``,
default ``airflow_api``), so no password sits in DAG code::

    airflow connections add airflow_api --conn-type http --conn-host api-server --conn-port 8080 \\
        --conn-login recovery --conn-password '...'

Connection fields: ``host`` (a name, or a full ``http(s)://host[:port][/prefix]`` URL), ``port``,
``schema`` (``http`` or ``https`` when ``host`` has no scheme), ``login`` and ``password`` (exchanged for
a JWT at ``POST /auth/token``, the simple auth manager's endpoint), or ``extra`` ``{"token": "..."}`` for
a ready-made bearer token. Optional extras: ``base_path`` (the API server behind a proxy prefix),
``verify`` (false, or a CA bundle path), ``timeout`` (seconds).

Every call has a timeout. Connection failures, timeouts and 5xx answers raise
:class:`AirflowAPIUnavailable` (try again later); other error answers raise :class:`AirflowAPIError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import httpx

from qubinode_recovery_provider import config

if TYPE_CHECKING:
    from types import TracebackType

DEFAULT_TIMEOUT = 10.0
API_PREFIX = "/api/v2"
TOKEN_PATH = "/auth/token"  # noqa: S105 - a URL path, not a secret
_MAX_DETAIL = 500
#: Extra tries of an idempotent request after an unavailable answer, and the pause unit between them.
IDEMPOTENT_RETRIES = 3
RETRY_PAUSE_SECONDS = 1.0


class AirflowAPIError(Exception):
    """The API answered with an error.

    :param message: what went wrong.
    :param status_code: the HTTP status, ``None`` when no answer came back.
    :param detail: the ``detail`` of the answer, when it had one.
    """

    def __init__(self, message: str, status_code: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail


class AirflowAPIUnavailable(AirflowAPIError):
    """The API server could not be reached, timed out or failed (5xx): worth trying again later."""


class AirflowAPIConfigError(AirflowAPIError):
    """The connection is missing or does not describe an API server."""


@dataclass(frozen=True)
class APISettings:
    """Where the API server is and how to authenticate.

    :param base_url: ``scheme://host[:port][/prefix]``, without ``/api/v2``.
    :param username: user exchanged for a JWT at ``/auth/token``.
    :param password: that user's password.
    :param token: a bearer token used as is (wins over username/password).
    :param verify: TLS verification: True, False or a CA bundle path.
    :param timeout: seconds for each request (connect, read, write and pool).
    """

    base_url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    verify: bool | str = True
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_connection_fields(
        cls,
        *,
        host: str | None,
        port: int | None = None,
        schema: str | None = None,
        login: str | None = None,
        password: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> APISettings:
        """Build settings from the fields of an Airflow connection (see the module docstring).

        :raises AirflowAPIConfigError: when ``host`` is empty.
        """
        extra = dict(extra or {})
        if not host:
            raise AirflowAPIConfigError("the Airflow API connection has no host")
        base_url = _base_url(host, port, schema, str(extra.get("base_path") or ""))
        return cls(
            base_url=base_url,
            username=login or None,
            password=password or None,
            token=str(extra["token"]) if extra.get("token") else None,
            verify=_verify(extra.get("verify", True)),
            timeout=float(extra.get("timeout") or DEFAULT_TIMEOUT),
        )


def _base_url(host: str, port: int | None, schema: str | None, base_path: str) -> str:
    """``scheme://host[:port]/prefix`` from connection fields.

    :param host: a host name or a full URL.
    :param port: the port when ``host`` has none.
    :param schema: ``http``/``https`` when ``host`` has no scheme (anything else is ignored).
    :param base_path: a path prefix in front of ``/api/v2``.
    """
    if "://" not in host:
        scheme = schema.lower() if schema and schema.lower() in {"http", "https"} else "http"
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    netloc = parts.netloc
    if port and parts.port is None:
        netloc = f"{netloc}:{int(port)}"
    path = "/".join(p.strip("/") for p in (parts.path, base_path) if p.strip("/"))
    return f"{parts.scheme}://{netloc}" + (f"/{path}" if path else "")


def _verify(value: Any) -> bool | str:
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
        return False
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on", ""}:
        return True
    return value if isinstance(value, str) else bool(value)


def connection_settings(conn_id: str | None = None, *, timeout: float | None = None) -> APISettings:
    """Read the API connection through the Task SDK (environment, secrets backends, or the supervisor).

    :param conn_id: the connection id; default ``[qubinode_recovery] recovery_conn_id``.
    :param timeout: overrides the connection's timeout.
    :raises AirflowAPIConfigError: when the connection does not exist or cannot be read.
    """
    conn_id = conn_id or config.get("recovery_conn_id")
    try:
        from airflow.sdk import Connection

        conn = Connection.get(conn_id)
    except Exception as exc:  # AirflowNotFoundException, or no way to reach a secrets backend
        raise AirflowAPIConfigError(f"cannot read Airflow connection {conn_id!r}: {exc}") from exc
    settings = APISettings.from_connection_fields(
        host=conn.host,
        port=conn.port,
        schema=conn.schema,
        login=conn.login,
        password=conn.password,
        extra=conn.extra_dejson,
    )
    if timeout is not None:
        settings = APISettings(**{**settings.__dict__, "timeout": timeout})
    return settings


class AirflowAPIClient:
    """Calls to the Airflow REST API v2 with JWT authentication and bounded waits.

    :param settings: where the server is and how to log in.
    :param transport: an httpx transport (tests).
    """

    def __init__(self, settings: APISettings, *, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self._http = httpx.Client(
            base_url=settings.base_url,
            timeout=httpx.Timeout(settings.timeout),
            verify=settings.verify,
            transport=transport,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )
        self._token = settings.token
        self._lock = threading.Lock()

    @classmethod
    def from_connection(cls, conn_id: str | None = None, *, timeout: float | None = None) -> AirflowAPIClient:
        """A client for the API described by an Airflow connection (see :func:`connection_settings`).

        :param conn_id: the connection id; default ``[qubinode_recovery] recovery_conn_id``.
        :param timeout: seconds per request, overriding the connection's.
        """
        return cls(connection_settings(conn_id, timeout=timeout))

    def __repr__(self) -> str:
        return f"AirflowAPIClient({self.settings.base_url!r})"

    def __enter__(self) -> AirflowAPIClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._http.close()

    # --- authentication ---------------------------------------------------------------------------

    def _login(self) -> str | None:
        """Exchange username and password for a JWT (``POST /auth/token``); ``None`` without them."""
        if not self.settings.username:
            return None
        body = {"username": self.settings.username, "password": self.settings.password or ""}
        response = self._send("POST", TOKEN_PATH, json=body)
        if response.status_code not in (200, 201):
            raise _error(response, "login failed")
        token = _json(response).get("access_token")
        if not token:
            raise AirflowAPIError("login answer has no access_token", response.status_code)
        return str(token)

    def _auth_headers(self, refresh: bool = False) -> dict[str, str]:
        with self._lock:
            if refresh and self.settings.token is None:
                self._token = None
            if self._token is None and self.settings.username:
                self._token = self._login()
            return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    # --- plumbing ------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise AirflowAPIUnavailable(
                f"{method} {path}: timed out after {self.settings.timeout:g}s"
            ) from exc
        except httpx.HTTPError as exc:
            raise AirflowAPIUnavailable(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 500:
            raise _error(response, f"{method} {path}", unavailable=True)
        return response

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        ok: Sequence[int] = (200, 201, 204),
        retries: int = 0,
    ) -> Any:
        """Send an authenticated request to ``/api/v2<path>`` and return the decoded JSON answer.

        A 401 answer logs in again once (an expired JWT). With ``retries``, an unavailable answer (a
        5xx such as SQLite's "database is locked" under load, a timeout, a refused connection) is tried
        again that many times after a short growing pause; use it only for idempotent requests.

        :param method: HTTP method.
        :param path: path below ``/api/v2``, starting with ``/``.
        :param json: the JSON body.
        :param params: query parameters.
        :param ok: statuses that count as success.
        :param retries: extra tries after an unavailable answer.
        :raises AirflowAPIUnavailable: on connection errors, timeouts and 5xx answers.
        :raises AirflowAPIError: on any other status not in ``ok``.
        """
        for attempt in range(retries + 1):
            try:
                return self._request_once(method, path, json=json, params=params, ok=ok)
            except AirflowAPIUnavailable:
                if attempt == retries:
                    raise
                time.sleep(RETRY_PAUSE_SECONDS * (attempt + 1))
        raise AssertionError("unreachable")  # pragma: no cover

    def _request_once(
        self, method: str, path: str, *, json: Any, params: Mapping[str, Any] | None, ok: Sequence[int]
    ) -> Any:
        url = API_PREFIX + path
        response = self._send(method, url, json=json, params=params, headers=self._auth_headers())
        if response.status_code == 401 and self.settings.username:
            response = self._send(
                method, url, json=json, params=params, headers=self._auth_headers(refresh=True)
            )
        if response.status_code not in ok:
            raise _error(response, f"{method} {url}")
        return _json(response) if response.content else {}

    # --- DAG runs ------------------------------------------------------------------------------------

    def trigger_dag_run(
        self,
        dag_id: str,
        *,
        conf: Mapping[str, Any] | None = None,
        run_id: str | None = None,
        logical_date: datetime | None = None,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Start a run of ``dag_id`` (``POST /dags/{dag_id}/dagRuns``) and return it.

        :param dag_id: the DAG to run.
        :param conf: the run's ``conf``.
        :param run_id: the run id; default: Airflow makes one. Give one to make the call idempotent (a
            second call then raises :class:`AirflowAPIError` with status 409).
        :param logical_date: the logical date; default none (Airflow 3 manual runs need none).
        :param note: a note shown on the run in the UI.
        """
        body: dict[str, Any] = {
            "logical_date": logical_date.isoformat() if logical_date else None,
            "conf": dict(conf or {}),
        }
        if run_id:
            body["dag_run_id"] = run_id
        if note:
            body["note"] = note
        return dict(self.request("POST", f"/dags/{_seg(dag_id)}/dagRuns", json=body))

    def get_dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """Return one DAG run (``GET /dags/{dag_id}/dagRuns/{run_id}``).

        :param dag_id: the DAG id.
        :param run_id: the run id.
        """
        return dict(
            self.request("GET", f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}", retries=IDEMPOTENT_RETRIES)
        )

    def set_dag_run_note(self, dag_id: str, run_id: str, note: str) -> dict[str, Any]:
        """Set the note of a DAG run (``PATCH /dags/{dag_id}/dagRuns/{run_id}``, ``update_mask=note``);
        Airflow renders it as Markdown on the run. Cut to the API's 1000 characters.

        :param dag_id: the DAG id.
        :param run_id: the run id.
        :param note: the note (Markdown).
        """
        path = f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}"
        body = {"note": _note(note)}
        return dict(self.request("PATCH", path, json=body, params={"update_mask": "note"}, retries=1))

    # --- task instances --------------------------------------------------------------------------------

    def set_task_instance_note(
        self, dag_id: str, run_id: str, task_id: str, note: str, map_index: int = -1
    ) -> dict[str, Any]:
        """Set the note of a task instance (``PATCH .../taskInstances/{task_id}[/{map_index}]``,
        ``update_mask=note``; its state is left as it is). Cut to the API's 1000 characters.

        :param dag_id: the DAG id.
        :param run_id: the run id.
        :param task_id: the task id.
        :param note: the note (Markdown).
        :param map_index: the map index of a mapped task instance.
        """
        path = f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/{_seg(task_id)}"
        if map_index >= 0:
            path += f"/{map_index}"
        body = {"note": _note(note)}
        return dict(self.request("PATCH", path, json=body, params={"update_mask": "note"}, retries=1))

    def clear_task_instances(
        self,
        dag_id: str,
        *,
        dag_run_id: str | None = None,
        task_ids: Sequence[str | tuple[str, int]] | None = None,
        dry_run: bool = False,
        only_failed: bool = True,
        include_downstream: bool = False,
        include_upstream: bool = False,
        reset_dag_runs: bool = True,
        note: str | None = None,
    ) -> dict[str, Any]:
        """Clear task instances so the scheduler runs them again (``POST /dags/{dag_id}/clearTaskInstances``).

        The API's own default for ``dry_run`` is **true**; this method always sends the value
        explicitly, and its default is to act.

        :param dag_id: the DAG id.
        :param dag_run_id: limit to one run.
        :param task_ids: task ids, or ``(task_id, map_index)`` pairs.
        :param dry_run: only list what would be cleared.
        :param only_failed: clear only failed (and upstream-failed) task instances.
        :param include_downstream: also clear the tasks downstream.
        :param include_upstream: also clear the tasks upstream.
        :param reset_dag_runs: set the affected runs back to queued.
        :param note: a note on the cleared task instances.
        :return: the answer, ``{"task_instances": [...], "total_entries": n}``.
        """
        body: dict[str, Any] = {
            "dry_run": bool(dry_run),
            "only_failed": bool(only_failed),
            "include_downstream": bool(include_downstream),
            "include_upstream": bool(include_upstream),
            "reset_dag_runs": bool(reset_dag_runs),
        }
        if dag_run_id:
            body["dag_run_id"] = dag_run_id
        if task_ids is not None:
            body["task_ids"] = [list(t) if isinstance(t, tuple) else t for t in task_ids]
        if note:
            body["note"] = _note(note)
        # Clearing is idempotent: a retry after an unavailable answer clears what is still failed.
        return dict(
            self.request(
                "POST", f"/dags/{_seg(dag_id)}/clearTaskInstances", json=body, retries=IDEMPOTENT_RETRIES
            )
        )


#: The REST API's limit on a note.
MAX_NOTE_CHARS = 1000


def _note(text: str) -> str:
    """``text`` within the API's note limit (cut at a line end where one is near, marked with ``…``)."""
    if len(text) <= MAX_NOTE_CHARS:
        return text
    cut = text[: MAX_NOTE_CHARS - 2]
    line_end = cut.rfind("\n")
    if line_end > MAX_NOTE_CHARS // 2:
        cut = cut[:line_end]
    return cut.rstrip() + "\n…"


def _seg(value: str) -> str:
    """Quote one path segment (run ids contain ``:`` and ``+``)."""
    return quote(value, safe="")


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise AirflowAPIError(
            f"{response.request.method} {response.request.url.path}: answer is not JSON",
            response.status_code,
        ) from exc


def _error(response: httpx.Response, what: str, *, unavailable: bool = False) -> AirflowAPIError:
    try:
        detail: Any = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = response.text[:_MAX_DETAIL]
    cls = AirflowAPIUnavailable if unavailable else AirflowAPIError
    text = detail if isinstance(detail, str) else str(detail)[:_MAX_DETAIL]
    return cls(f"{what}: HTTP {response.status_code}: {text}", response.status_code, detail)


__all__ = [
    "APISettings",
    "AirflowAPIClient",
    "AirflowAPIConfigError",
    "AirflowAPIError",
    "AirflowAPIUnavailable",
    "connection_settings",
]
