"""A local stand-in for the Airflow REST API v2 on 127.0.0.1, recording every request.

It follows the published API for the calls the provider makes: ``POST /auth/token`` (simple auth
manager), ``GET /api/v2/version`` (no authentication, as on the real server), ``GET /api/v2/dags``,
``POST /api/v2/dags/{dag_id}/dagRuns``, ``GET .../dagRuns/{run_id}`` and
``POST /api/v2/dags/{dag_id}/clearTaskInstances``. ``behaviour`` lets a test make it answer 401, 409,
500, or hang.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

USER, PASSWORD = "recovery", "s3cret-pass"
#: What ``GET /api/v2/version`` answers.
VERSION = "3.3.2"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class ApiStub:
    """State shared with the handler."""

    requests: list[Recorded] = field(default_factory=list)
    behaviour: dict[str, Any] = field(default_factory=dict)
    runs: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    tokens_issued: int = 0
    server: ThreadingHTTPServer | None = None
    #: set by :func:`stop_stub`: a request told to hang stops hanging, so no handler thread outlives it
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def connection_env(self, conn_id: str = "airflow_api", **extra: Any) -> dict[str, str]:
        conn: dict[str, Any] = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": self.port,
            "login": USER,
            "password": PASSWORD,
        }
        if extra:
            conn["extra"] = extra
        return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn)}

    def posts(self, suffix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == "POST" and r.path.endswith(suffix)]


def send_json(handler: BaseHTTPRequestHandler, status: int, body: Any) -> None:
    """Answer a request with ``body`` as JSON."""
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


class StubHandler(BaseHTTPRequestHandler):
    """Answers like the API server; ``stub`` is set on a subclass per server."""

    stub: ApiStub

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _reply(self, status: int, body: Any) -> None:
        send_json(self, status, body)

    def _record(self) -> Recorded:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        entry = Recorded(self.command, urlsplit(self.path).path, dict(self.headers), body)
        self.stub.requests.append(entry)
        return entry

    def _authorised(self) -> bool:
        if self.stub.behaviour.get("always_401"):
            return False
        auth = self.headers.get("Authorization", "")
        return auth.startswith("Bearer token-") or auth == "Bearer static-token"

    def do_POST(self) -> None:
        entry = self._record()
        if hang := self.stub.behaviour.get("hang_seconds"):
            self.stub.released.wait(hang)
        if entry.path == "/auth/token":
            return self._token(entry.body or {})
        if not self._authorised():
            return self._reply(401, {"detail": "Not authenticated"})
        if self.stub.behaviour.get("status"):
            return self._reply(self.stub.behaviour["status"], {"detail": "stub says no"})
        parts = entry.path.split("/")
        if entry.path.endswith("/dagRuns"):
            return self._trigger(unquote(parts[4]), entry.body or {})
        if entry.path.endswith("/clearTaskInstances"):
            if self.stub.behaviour.get("clear_failures", 0) > 0:  # SQLite "database is locked" under load
                self.stub.behaviour["clear_failures"] -= 1
                return self._reply(500, {"reason": "Database error", "message": "Serious error"})
            cleared = self.stub.behaviour.get("cleared", [])
            return self._reply(200, {"task_instances": cleared, "total_entries": len(cleared)})
        return self._reply(404, {"detail": "no such route"})

    def do_GET(self) -> None:
        entry = self._record()
        if entry.path == "/api/v2/version":
            return self._reply(200, {"version": VERSION, "git_version": None})
        if not self._authorised():
            return self._reply(401, {"detail": "Not authenticated"})
        if entry.path == "/api/v2/dags":
            dag_ids = sorted({dag_id for dag_id, _ in self.stub.runs})
            dags = [{"dag_id": dag_id} for dag_id in dag_ids]
            limit = int(parse_qs(urlsplit(self.path).query).get("limit", ["100"])[0])
            return self._reply(200, {"dags": dags[:limit], "total_entries": len(dags)})
        parts = entry.path.split("/")
        if len(parts) < 7:
            return self._reply(404, {"detail": "no such route"})
        key = (unquote(parts[4]), unquote(parts[6]))
        if key in self.stub.runs:
            return self._reply(200, self.stub.runs[key])
        return self._reply(404, {"detail": "DagRun not found"})

    def _token(self, body: dict[str, Any]) -> None:
        if body.get("username") != USER or body.get("password") != PASSWORD:
            return self._reply(401, {"detail": "Invalid credentials"})
        self.stub.tokens_issued += 1
        expire = self.stub.behaviour.pop("expire_first_token", False)
        token = "expired" if expire else f"token-{self.stub.tokens_issued}"
        return self._reply(201, {"access_token": token})

    def _trigger(self, dag_id: str, body: dict[str, Any]) -> None:
        run_id = body.get("dag_run_id") or f"manual__{len(self.stub.runs)}"
        if (dag_id, run_id) in self.stub.runs:
            return self._reply(409, {"detail": f"DAG run {run_id} already exists"})
        run = {"dag_id": dag_id, "dag_run_id": run_id, "conf": body.get("conf"), "state": "queued"}
        self.stub.runs[(dag_id, run_id)] = run
        return self._reply(200, run)


class QuietServer(ThreadingHTTPServer):
    """A client that gave up (a timeout test) is not an error worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        return


def start_stub() -> ApiStub:
    stub = ApiStub()
    handler = type("Handler", (StubHandler,), {"stub": stub})
    stub.server = QuietServer(("127.0.0.1", 0), handler)
    stub.server.daemon_threads = True
    threading.Thread(target=stub.server.serve_forever, daemon=True).start()
    return stub


def stop_stub(stub: ApiStub) -> None:
    assert stub.server is not None
    stub.released.set()
    stub.server.shutdown()
    stub.server.server_close()
    for thread in threading.enumerate():  # handler threads finish their reply after the release
        if thread.name.endswith("(process_request_thread)"):
            thread.join(5)
