"""One local HTTP server for everything outside that calls us or that we call.

A real threaded HTTP server on loopback that records every request and answers
what the test tells it: a tenant's webhook endpoint, the relay for bridge
webhooks, an OpenAI-compatible LLM vendor, an alert receiver. It is the only
stub these tests use, at the HTTP layer (STYLE.md rule 8).

    receiver = http_receiver()              # answers 200 to everything
    receiver.status = 410                   # ... now 410
    receiver.fail_next = 2                  # the next two get a 500 first
    receiver.wait_for(1)                    # the requests it answered 2xx
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    status: int = 0  # what the receiver answered

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: bytes | dict | list | None = None  # a dict or list is sent as JSON
    headers: dict[str, str] | None = None


class HttpReceiver:
    """Records requests; answers `answer(request)`, by default `status` (after `fail_next` 500s).

    Subclass and override `answer` for a vendor API (see tests/agents/conftest.py's LLM).
    """

    def __init__(self, *, path: str = "/hook", status: int = 200) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.url = self.base_url + path
        self.status = status
        self.fail_next = 0  # answer 500 to this many requests, to exercise the caller's retries
        self.delay = 0.0  # seconds before answering, to exercise the caller's timeouts
        self.requests: list[Request] = []  # every request, in arrival order, answered or not yet
        self.condition = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def answer(self, request: Request) -> Answer:
        return Answer(self.status)

    @property
    def delivered(self) -> list[Request]:
        """The requests answered with a 2xx: what the caller knows was delivered."""
        with self.condition:
            return [r for r in self.requests if 200 <= r.status < 300]

    def wait_for(self, count: int, match: Callable[[Request], bool] = lambda r: True,
                 timeout: float = 10.0) -> list[Request]:
        """Wait until `count` requests matching `match` were answered 2xx; return all such requests."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                found = [r for r in self.requests if 200 <= r.status < 300 and match(r)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"waited {timeout} s for {count} requests, got {len(found)}: "
                                         f"{[(r.status, r.body[:200]) for r in self.requests]}")
                self.condition.wait(remaining)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _respond(self, request: Request) -> Answer:
        with self.condition:
            failing = self.fail_next > 0
            if failing:
                self.fail_next -= 1
            delay = self.delay
        if delay:
            time.sleep(delay)  # the stub being slow, on its own thread: not a test waiting
        return Answer(500) if failing else self.answer(request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Request(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with receiver.condition:
                    receiver.requests.append(request)
                answer = receiver._respond(request)
                payload = answer.body
                headers = dict(answer.headers or {})
                if isinstance(payload, (dict, list)):
                    payload = json.dumps(payload).encode()
                    headers.setdefault("Content-Type", "application/json")
                payload = payload or b""
                with receiver.condition:
                    request.status = answer.status
                    receiver.condition.notify_all()
                try:
                    self.send_response(answer.status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller timed out first: the point of the slow-answer tests

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815 (http.server's naming)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def http_receiver() -> Iterator[Callable[..., HttpReceiver]]:
    """Factory: `http_receiver(status=200, path="/hook")`; every server is closed after the test."""
    receivers: list[HttpReceiver] = []

    def make(**options) -> HttpReceiver:
        receivers.append(HttpReceiver(**options))
        return receivers[-1]

    yield make
    for receiver in receivers:
        receiver.close()
