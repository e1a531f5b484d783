"""A local stand-in for an OpenAI-compatible chat server (Ollama, vLLM, OpenAI) on 127.0.0.1.

It answers ``POST /v1/chat/completions`` the way the OpenAI Chat Completions API does when the client
offered tools: one ``chat.completion`` whose message calls the first offered tool (PydanticAI's output
tool) with :attr:`LLMStub.answer` as its JSON arguments. Every request body is recorded. ``behaviour``
makes it answer ``status`` (an HTTP error), ``raw_arguments`` (a string sent as the arguments, e.g.
invalid JSON), or ``hang`` (no answer until the client goes away or the stub stops; a client that
closed its connection meanwhile is counted in :attr:`LLMStub.disconnects`).

Used as a context manager (``with running_llm_stub() as stub``): the server thread and every handler
thread are joined when it ends.
"""

from __future__ import annotations

import json
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from support.api_stub import send_json

if TYPE_CHECKING:
    from qubinode_recovery_provider.models import Diagnosis

MODEL = "stub-model"
DEFAULT_ANSWER: dict[str, Any] = {
    "root_cause": "network",
    "confidence": 0.9,
    "retryable": True,
    "retryable_reason": "the registry answered again a minute later",
    "summary": "The image registry could not be reached.",
    "reasoning": "Line 2 shows the TCP connection to the registry timing out.",
    "recommended_actions": ["Check the proxy settings of the worker host."],
}


@dataclass
class LLMStub:
    """The server's state, shared with its handler."""

    answer: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ANSWER))
    behaviour: dict[str, Any] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: the headers of every request, names in lower case
    headers: list[dict[str, str]] = field(default_factory=list)
    disconnects: int = 0
    #: set when a client closed its connection before a hanging request was answered
    disconnected: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def prompts(self) -> list[str]:
        """The text of every message the clients sent, one string per request."""
        return [
            "\n".join(str(m.get("content") or "") for m in body.get("messages", [])) for body in self.requests
        ]


class _Handler(BaseHTTPRequestHandler):
    stub: LLMStub

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.stub.requests.append(body)
        self.stub.headers.append({k.lower(): v for k, v in self.headers.items()})
        if not self.path.endswith("/chat/completions"):
            return self._reply(404, {"error": {"message": "no such route"}})
        if self.stub.behaviour.get("hang"):
            if self._client_left():
                self.stub.disconnects += 1
                self.stub.disconnected.set()
            return None
        if status := self.stub.behaviour.get("status"):
            return self._reply(status, {"error": {"message": "stub says no", "type": "server_error"}})
        return self._reply(200, self._completion(body))

    def _client_left(self) -> bool:
        """Wait without answering until the client closes its connection (True) or the stub stops."""
        conn: socket.socket = self.connection
        while not self.stub.released.is_set():
            readable, _, _ = select.select([conn], [], [], 0.05)
            if readable:
                try:
                    if conn.recv(1, socket.MSG_PEEK) == b"":
                        return True
                except OSError:
                    return True
        return False

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        tools = body.get("tools") or []
        name = tools[0]["function"]["name"] if tools else "final_result"
        arguments = self.stub.behaviour.get("raw_arguments")
        if arguments is None:
            arguments = json.dumps(self.stub.answer)
        return {
            "id": f"chatcmpl-{len(self.stub.requests)}",
            "object": "chat.completion",
            "created": 1_767_000_000,
            "model": body.get("model", MODEL),
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "id": f"call_{len(self.stub.requests)}",
                                "type": "function",
                                "function": {"name": name, "arguments": arguments},
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
        }

    def _reply(self, status: int, body: Any) -> None:
        send_json(self, status, body)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = False  # handler threads are joined by server_close()
    block_on_close = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # a client that gave up
        return


@contextmanager
def running_llm_stub() -> Iterator[LLMStub]:
    """Start the stub on an ephemeral port of 127.0.0.1; stop it and join its threads at the end."""
    stub = LLMStub()
    handler = type("Handler", (_Handler,), {"stub": stub})
    stub.server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=stub.server.serve_forever, name="llm-stub", daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        stub.released.set()
        stub.server.shutdown()
        stub.server.server_close()
        thread.join(5)


def opinion_status(diagnosis: Diagnosis) -> str | None:
    """The status of a diagnosis's LLM second opinion (``applied``, ``fallback``, ``deferred``), or None."""
    return diagnosis.llm.status if diagnosis.llm is not None else None
