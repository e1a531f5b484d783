"""A local stand-in for the GitHub REST API on 127.0.0.1, for the real PyGithub client.

It follows the published shapes of the calls the escalation sink makes: ``GET /repos/{owner}/{repo}``,
``GET /search/issues`` (the quoted phrase of ``q`` matched against title and body), ``POST
/repos/{owner}/{repo}/issues`` (missing labels are created, as GitHub does), ``GET``/``PATCH
/repos/{owner}/{repo}/issues/{number}``, ``POST .../issues/{number}/comments``, ``GET /user`` and a
GitHub App's ``POST /app/installations/{id}/access_tokens``. Every answer carries the ``x-ratelimit-*``
headers. ``fail_next`` queues error answers (status, headers, the JSON message) that the next requests
get instead; every request, body included, is recorded.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from qubinode_recovery_provider.escalation.github import GitHubIssues, github_client

FULL_NAME = "acme/infra-incidents"
TOKEN = "ghp_stubTokenForTests0000000000000000000"
_APP_TOKEN = re.compile(r"^/app/installations/\d+/access_tokens$")
_ISSUE = re.compile(r"^/repos/([^/]+)/([^/]+)/issues/(\d+)(/comments)?$")


@dataclass
class Recorded:
    method: str
    path: str
    body: str
    status: int


@dataclass
class GitHubStub:
    """The fake repository's issues, the queued failures and the requests received."""

    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    comments: dict[int, list[str]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    failures: list[tuple[int, dict[str, str], str, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    full_name: str = FULL_NAME
    app_tokens: int = 0

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fail_next(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        times: int = 1,
        method: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests (of ``method`` only, when given) with ``status`` and
        GitHub's error body."""
        with self.lock:
            self.failures.extend([(status, dict(headers or {}), message, method)] * times)

    def bodies(self) -> list[str]:
        with self.lock:
            return [r.body for r in self.requests]

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.method == method and re.search(pattern, r.path)]

    def all_comments(self) -> list[str]:
        with self.lock:
            return [c for number in sorted(self.comments) for c in self.comments[number]]

    # --- the API ------------------------------------------------------------------------------

    def repo_json(self) -> dict[str, Any]:
        owner, name = self.full_name.split("/")
        return {
            "id": 1,
            "name": name,
            "full_name": self.full_name,
            "owner": {"login": owner, "id": 2, "type": "Organization"},
            "private": True,
            "url": f"{self.url}/repos/{self.full_name}",
            "html_url": f"https://github.example/{self.full_name}",
            "has_issues": True,
        }

    def issue_json(self, number: int) -> dict[str, Any]:
        issue = self.issues[number]
        base = f"{self.url}/repos/{self.full_name}/issues/{number}"
        return {
            **issue,
            "id": 1000 + number,
            "number": number,
            "url": base,
            "comments_url": f"{base}/comments",
            "html_url": f"https://github.example/{self.full_name}/issues/{number}",
            "repository_url": f"{self.url}/repos/{self.full_name}",
            "comments": len(self.comments.get(number, [])),
            "labels": [{"name": name, "color": "ededed"} for name in issue["labels"]],
            "user": {"login": "qubinode-bot", "id": 3},
        }

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        number = len(self.issues) + 1
        self.issues[number] = {
            "title": body["title"],
            "body": body.get("body") or "",
            "labels": list(body.get("labels") or []),
            "state": "open",
            "state_reason": None,
        }
        return self.issue_json(number)

    def search(self, query: str) -> dict[str, Any]:
        phrases = re.findall(r'"([^"]+)"', query)
        items = [
            self.issue_json(n)
            for n, issue in sorted(self.issues.items())
            if all(p in issue["body"] or p in issue["title"] for p in phrases)
        ]
        return {"total_count": len(items), "incomplete_results": False, "items": items}


class _Handler(BaseHTTPRequestHandler):
    stub: GitHubStub

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _reply(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": str(int(time.time()) + 3600),
            "x-ratelimit-used": "1",
            "x-ratelimit-resource": "core",
            **(headers or {}),
        }.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        stub = self.stub
        with stub.lock:
            status, payload, headers = self._answer(method, raw)
            stub.requests.append(Recorded(method, self.path, raw, status))
        self._reply(status, payload, headers)

    def _answer(self, method: str, raw: str) -> tuple[int, Any, dict[str, str]]:
        stub = self.stub
        if method == "POST" and _APP_TOKEN.match(urlsplit(self.path).path):
            return self._installation_token()
        if self.headers.get("Authorization") not in (f"token {TOKEN}", f"Bearer {TOKEN}"):
            return 401, {"message": "Bad credentials"}, {}
        if stub.failures and stub.failures[0][3] in (None, method):
            status, headers, message, _ = stub.failures.pop(0)
            return status, {"message": message, "documentation_url": "https://docs.github.com/rest"}, headers
        url = urlsplit(self.path)
        body = json.loads(raw) if raw else {}
        if method == "GET" and url.path == "/user":
            return 200, {"login": "qubinode-bot", "id": 3}, {}
        if method == "GET" and url.path == f"/repos/{stub.full_name}":
            return 200, stub.repo_json(), {}
        if method == "GET" and url.path == "/search/issues":
            return 200, stub.search(parse_qs(url.query).get("q", [""])[0]), {}
        if method == "POST" and url.path == f"/repos/{stub.full_name}/issues":
            return 201, stub.create(body), {}
        return self._issue_answer(method, url.path, body)

    def _issue_answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        stub = self.stub
        match = _ISSUE.match(path)
        if not match or f"{match[1]}/{match[2]}" != stub.full_name or int(match[3]) not in stub.issues:
            return 404, {"message": "Not Found"}, {}
        number = int(match[3])
        if match[4] and method == "POST":
            stub.comments.setdefault(number, []).append(body["body"])
            return 201, {"id": 5000 + len(stub.comments[number]), "body": body["body"]}, {}
        if method == "PATCH" and not match[4]:
            stub.issues[number].update(
                {k: v for k, v in body.items() if k in ("state", "state_reason", "title", "body")}
            )
        return 200, stub.issue_json(number), {}

    def _installation_token(self) -> tuple[int, Any, dict[str, str]]:
        """A GitHub App's installation token, for a request signed with the App's JWT."""
        if not (self.headers.get("Authorization") or "").startswith("Bearer ey"):
            return 401, {"message": "A JSON web token could not be decoded"}, {}
        self.stub.app_tokens += 1
        expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return 201, {"token": TOKEN, "expires_at": expires, "permissions": {"issues": "write"}}, {}

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client gone mid-reply
        return


class Clock:
    """A clock the test moves (thread-safe)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self.now

    def advance(self, seconds: float) -> datetime:
        with self._lock:
            self.now += timedelta(seconds=seconds)
            return self.now


def issues_for(stub: GitHubStub, full_name: str | None = None) -> GitHubIssues:
    """The real PyGithub client pointed at the stand-in (no write spacing: the stand-in needs none)."""
    client = github_client(
        TOKEN, base_url=stub.url, timeout=10, seconds_between_requests=None, seconds_between_writes=None
    )
    return GitHubIssues(client, full_name or stub.full_name)


def start_github_stub(full_name: str = FULL_NAME) -> GitHubStub:
    """Serve a fresh fake repository ``full_name`` (``owner/name``) on an ephemeral port of 127.0.0.1."""
    stub = GitHubStub(full_name=full_name)
    handler = type("Handler", (_Handler,), {"stub": stub})
    stub.server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=stub.server.serve_forever, name="github-stub", daemon=True)
    thread.start()
    return stub


def stop_github_stub(stub: GitHubStub) -> None:
    """Stop serving and wait for every handler thread."""
    assert stub.server is not None
    stub.server.shutdown()
    stub.server.server_close()
    for thread in threading.enumerate():
        if thread.name == "github-stub" or thread.name.endswith("(process_request_thread)"):
            thread.join(5)
