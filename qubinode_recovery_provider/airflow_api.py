"""The one client for the Airflow REST API v2: trigger, read and annotate DAG runs, clear task instances,
and page through runs, task instances and DAG details for the shadow scan.

Where it lives: at the top of the package, beside :mod:`~qubinode_recovery_provider.models` and
:mod:`~qubinode_recovery_provider.config`, because the core (``shadow/`` reads runs, ``recovery/`` clears
failed tasks) and the Airflow adapters (``hooks/airflow_api.py``) both use it. It imports ``httpx`` and
nothing of Airflow, so the core and the CLI keep running in a process without Airflow. Reading an Airflow
connection is the hook's job (:class:`~qubinode_recovery_provider.hooks.airflow_api.AirflowApiHook`); this
module turns the connection's fields into :class:`APISettings` (:meth:`APISettings.from_connection_fields`,
the one place where a connection becomes a URL), and a URL given on a command line goes through the same
function (:meth:`APISettings.from_url`).

The address and credentials come from an Airflow connection (``[qubinode_recovery] recovery_conn_id``,
default ``airflow_api``, connection type ``airflow_api``; connections of type ``http`` work the same), so
no password sits in DAG code::

    airflow connections add airflow_api --conn-type airflow_api --conn-host api-server --conn-port 8080 \\
        --conn-login recovery --conn-password '...'

Connection fields: ``host`` (a name, or a full ``http(s)://host[:port][/prefix]`` URL), ``port``,
``schema`` (``http`` or ``https`` when ``host`` has no scheme), ``login`` and ``password`` (exchanged for
a JWT at ``POST /auth/token``, the simple auth manager's endpoint), or ``extra`` ``{"token": "..."}`` for
a ready-made bearer token. Optional extras: ``base_path`` (the API server behind a proxy prefix),
``verify`` (false, or a CA bundle path), ``timeout`` (seconds), ``base_url`` (a full URL used instead of
``host``, ``port`` and ``schema``).

Every call has a timeout. Connection failures, timeouts and 5xx answers raise
:class:`AirflowAPIUnavailable` (try again later); other error answers raise :class:`AirflowAPIError`;
settings that describe no API server raise :class:`AirflowAPIConfigError`. Reads (and clearing, which is
idempotent) are tried again after an unavailable answer; triggering a run is not. Passwords and tokens
appear in no repr and no error message.
"""

from __future__ import annotations

import math
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import httpx

from qubinode_recovery_provider.jsontext import loads as json_loads
from qubinode_recovery_provider.redaction import redact, redact_data

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
        conn_type: str | None = None,
    ) -> APISettings:
        """Build settings from the fields of an Airflow connection (see the module docstring).

        :param host: a host name or a full URL.
        :param port: the port when ``host`` has none.
        :param schema: ``http``/``https`` when ``host`` has no scheme.
        :param login: the user exchanged for a JWT.
        :param password: that user's password.
        :param extra: ``token``, ``base_path``, ``verify``, ``timeout``, ``base_url``.
        :param conn_type: the connection type; ``https`` (a URI ``https://host``) means the scheme https
            when neither ``host`` nor ``schema`` names one.
        :raises AirflowAPIConfigError: when there is no host, or a value is unusable.
        """
        extra = dict(extra or {})
        if extra.get("base_url"):
            host, port = str(extra["base_url"]), None
        if not host:
            raise AirflowAPIConfigError("the Airflow API connection has no host")
        if not (schema and schema.lower() in _SCHEMES) and conn_type in _SCHEMES:
            schema = conn_type
        return cls(
            base_url=_base_url(host, port, schema, str(extra.get("base_path") or "")),
            username=login or None,
            password=password or None,
            token=str(extra["token"]) if extra.get("token") else None,
            verify=_verify(extra.get("verify", True)),
            timeout=_timeout(extra.get("timeout")),
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        verify: bool | str = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> APISettings:
        """Build settings from a URL (``http://user:password@host:8080``), as the CLI takes it; the same
        rules as a connection whose ``host`` is that URL.

        :param url: the API server's URL; user and password in it are used when none are given.
        :param username: the user exchanged for a JWT.
        :param password: that user's password.
        :param token: a bearer token (wins over username/password).
        :param verify: TLS verification: True, False or a CA bundle path.
        :param timeout: seconds for each request.
        :raises AirflowAPIConfigError: when ``url`` is not an http(s) URL with a host.
        """
        try:
            parts = urlsplit(url.strip())
            url_user, url_password = parts.username, parts.password
        except ValueError:
            raise AirflowAPIConfigError("the Airflow API URL cannot be parsed") from None
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise AirflowAPIConfigError("the Airflow API URL must be http(s)://host[:port][/prefix]")
        return cls.from_connection_fields(
            host=url.strip(),
            login=username or (unquote(url_user) if url_user else None),
            password=password or (unquote(url_password) if url_password else None),
            extra={"token": token, "verify": verify, "timeout": timeout},
        )

    def with_timeout(self, timeout: float | None) -> APISettings:
        """These settings with another per-request timeout (``None``: unchanged).

        :param timeout: seconds for each request.
        """
        return self if timeout is None else replace(self, timeout=_timeout(timeout))


_SCHEMES = ("http", "https")


def _base_url(host: str, port: int | None, schema: str | None, base_path: str) -> str:
    """``scheme://host[:port]/prefix`` from connection fields; never with user or password in it.

    :param host: a host name or a full URL.
    :param port: the port when ``host`` has none.
    :param schema: ``http``/``https`` when ``host`` has no scheme (anything else is ignored).
    :param base_path: a path prefix in front of ``/api/v2``.
    """
    if "://" not in host:
        scheme = schema.lower() if schema and schema.lower() in _SCHEMES else "http"
        host = f"{scheme}://{host}"
    try:
        parts = urlsplit(host)
        port = None if parts.port is not None else port and int(port)
    except ValueError:
        raise AirflowAPIConfigError("the Airflow API connection's host or port is not usable") from None
    netloc = parts.netloc.rpartition("@")[2] + (f":{port}" if port else "")
    prefix = parts.path.rstrip("/").removesuffix(API_PREFIX)
    path = "/".join(p.strip("/") for p in (prefix, base_path) if p.strip("/"))
    return f"{parts.scheme}://{netloc}" + (f"/{path}" if path else "")


def _verify(value: Any) -> bool | str:
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "off"}:
        return False
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "on", ""}:
        return True
    return value if isinstance(value, str) else bool(value)


def _timeout(value: Any) -> float:
    """Seconds per request from a connection extra or an argument; the default when empty."""
    if value is None or value == "":
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise AirflowAPIConfigError(
            f"the Airflow API timeout must be a number of seconds above 0, got {str(value)[:40]!r}"
        )
    return seconds


def _tls_verify(settings: APISettings) -> bool | str | ssl.SSLContext:
    """What the client verifies TLS with: ``settings.verify``, except for a plain ``http://`` server with
    the default verification, where no CA bundle is loaded (tens of milliseconds in a failing task that
    never uses it). The client follows no redirect, so it never leaves that server; a TLS connection made
    anyway would fail verification (an empty trust store), never be trusted unchecked.

    :param settings: the server's settings.
    """
    if settings.verify is True and urlsplit(settings.base_url).scheme == "http":
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # hostname check and CERT_REQUIRED, no CA
    return settings.verify


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
            verify=_tls_verify(settings),
            transport=transport,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )
        self._token = settings.token
        self._lock = threading.Lock()

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

    # --- reads for the shadow scan and the connection test ---------------------------------------------

    def get_version(self) -> dict[str, Any]:
        """The server's version (``GET /version``): ``{"version": ..., "git_version": ...}``.

        Sent with the credentials, so a login that fails shows here; not tried again (a probe).
        """
        return _object(self.request("GET", "/version"), "GET /version")

    def get_dag_details(self, dag_id: str) -> dict[str, Any]:
        """One DAG's details (``GET /dags/{dag_id}/details``), with its default ``params``.

        :param dag_id: the DAG id.
        """
        path = f"/dags/{_seg(dag_id)}/details"
        return _object(self.request("GET", path, retries=IDEMPOTENT_RETRIES), f"GET {path}")

    def iter_dag_runs(
        self,
        dag_id: str = "~",
        *,
        state: str | None = None,
        end_date_gte: datetime | None = None,
        end_date_lt: datetime | None = None,
        order_by: str = "id",
        page_size: int = 100,
    ) -> Iterator[Any]:
        """Every DAG run that matches (``GET /dags/{dag_id}/dagRuns``, ``~``: all DAGs), page by page:
        keyset (cursor) pagination, or ``offset`` when the server sends no cursor.

        :param dag_id: the DAG id, ``~`` for every DAG.
        :param state: only runs in this state.
        :param end_date_gte: only runs that ended at or after this.
        :param end_date_lt: only runs that ended before this.
        :param order_by: the sort key (stable paging needs a unique one).
        :param page_size: runs per request (at most the server's ``[api] maximum_page_limit``).
        :return: each run as the API returned it (a JSON object, unless the server misbehaves).
        """
        query: dict[str, Any] = {"order_by": order_by, "limit": page_size}
        for name, value in (("state", state), ("end_date_gte", end_date_gte), ("end_date_lt", end_date_lt)):
            if value is not None:
                query[name] = value.isoformat() if isinstance(value, datetime) else value
        path = f"/dags/{_seg(dag_id)}/dagRuns"
        paging: dict[str, Any] = {"cursor": ""}
        offset = 0
        while paging:
            page = _object(
                self.request("GET", path, params={**query, **paging}, retries=IDEMPOTENT_RETRIES), path
            )
            items = _list(page.get("dag_runs"))
            yield from items
            offset += len(items)
            paging = _next_runs_page(page, paging, len(items), offset, page_size)

    def iter_task_instances(
        self,
        *,
        dag_ids: Sequence[str] | None = None,
        dag_run_ids: Sequence[str] | None = None,
        order_by: str = "id",
        page_size: int = 100,
    ) -> Iterator[Any]:
        """The task instances of these DAGs and runs, in batch requests
        (``POST /dags/~/dagRuns/~/taskInstances/list``, paged by ``page_offset``). The API matches DAGs
        and runs independently: a run id that exists in two of the DAGs brings the task instances of both.

        :param dag_ids: only these DAGs.
        :param dag_run_ids: only these run ids.
        :param order_by: the sort key.
        :param page_size: task instances per request.
        :return: each task instance as the API returned it.
        """
        path = "/dags/~/dagRuns/~/taskInstances/list"
        body: dict[str, Any] = {"order_by": order_by, "page_limit": page_size}
        if dag_ids is not None:
            body["dag_ids"] = list(dag_ids)
        if dag_run_ids is not None:
            body["dag_run_ids"] = list(dag_run_ids)
        offset = 0
        while True:
            answer = self.request(
                "POST", path, json={**body, "page_offset": offset}, retries=IDEMPOTENT_RETRIES
            )
            page = _object(answer, path)
            items = _list(page.get("task_instances"))
            yield from items
            offset += len(items)
            if _last_page(page, len(items), offset, page_size):
                return

    def get_task_log(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        try_number: int,
        map_index: int = -1,
        max_chars: int = 262144,
    ) -> str:
        """The log of one try of a task instance as text (``GET .../taskInstances/{task_id}/logs/{try}``),
        one line per log event, cut to ``max_chars``. One read, tried again after an unavailable answer.

        :param dag_id: the DAG id.
        :param run_id: the run id.
        :param task_id: the task id.
        :param try_number: the try.
        :param map_index: the map index of a mapped task instance.
        :param max_chars: the most characters returned.
        """
        task = f"/dags/{_seg(dag_id)}/dagRuns/{_seg(run_id)}/taskInstances/{_seg(task_id)}"
        path = f"{task}/logs/{int(try_number)}"
        params = {"full_content": "true", "map_index": map_index}
        answer = _object(self.request("GET", path, params=params, retries=IDEMPOTENT_RETRIES), path)
        lines: list[str] = []
        size = 0
        for entry in _list(answer.get("content")):
            text = entry.get("event") if isinstance(entry, dict) else entry
            if not isinstance(text, str):
                continue
            lines.append(text)
            size += len(text) + 1
            if size >= max_chars:
                break
        return "\n".join(lines)[:max_chars]


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
        return json_loads(response.content)
    except ValueError as exc:
        raise AirflowAPIError(
            f"{response.request.method} {response.request.url.path}: answer is not JSON",
            response.status_code,
        ) from exc


def _object(answer: Any, what: str) -> dict[str, Any]:
    """``answer`` when it is a JSON object; an :class:`AirflowAPIError` otherwise."""
    if not isinstance(answer, dict):
        raise AirflowAPIError(f"{what}: the answer is not a JSON object")
    return answer


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _last_page(page: Mapping[str, Any], count: int, offset: int, page_size: int) -> bool:
    """Whether an offset-paged listing is over: every entry read when the page says how many there are
    (a server may cap the page below ``page_size``), else a short page."""
    total = page.get("total_entries")
    if isinstance(total, int) and count:
        return offset >= total
    return count < page_size


def _next_runs_page(
    page: Mapping[str, Any], paging: Mapping[str, Any], count: int, offset: int, page_size: int
) -> dict[str, Any]:
    """The paging parameters of the next page of runs; empty when this page was the last."""
    cursor = page.get("next_cursor")
    if "cursor" in paging and count and isinstance(cursor, str) and cursor and cursor != paging["cursor"]:
        return {"cursor": cursor}
    if _last_page(page, count, offset, page_size):
        return {}
    return {"offset": offset}  # a server without keyset pagination: go on by offset


def _error(response: httpx.Response, what: str, *, unavailable: bool = False) -> AirflowAPIError:
    try:
        detail: Any = json_loads(response.content).get("detail")  # (nested too deeply: a ValueError)
    except (ValueError, AttributeError):
        detail = response.text[:_MAX_DETAIL]
    cls = AirflowAPIUnavailable if unavailable else AirflowAPIError
    # an answer may echo the request (a 422 of the login quotes the password it was sent)
    text = redact(detail if isinstance(detail, str) else str(detail)[:_MAX_DETAIL])
    return cls(f"{what}: HTTP {response.status_code}: {text}", response.status_code, redact_data(detail))


__all__ = [
    "APISettings",
    "AirflowAPIClient",
    "AirflowAPIConfigError",
    "AirflowAPIError",
    "AirflowAPIUnavailable",
]
