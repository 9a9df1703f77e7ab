"""Drain the web process before it stops (docs/operations.md, "Process supervision").

The launcher sends the web process SIGUSR1 first. From then on it turns away
new requests with 503 + Retry-After (nginx or the next client retry goes to
another process) but still serves the bridges' callbacks under /hooks/: the
sandbox workers stop after the web process and deliver their last acks and
inbound messages to it. /healthz reports how many requests are still in
flight, so the launcher waits for that to reach zero instead of guessing, and
/readyz answers 503 so a load balancer takes the process out.

An ASGI wrapper rather than a Django middleware: it answers without entering
Django's thread pool, which is exactly what is busy under load.
"""

from __future__ import annotations

import json
import signal

DRAIN_SIGNAL = signal.SIGUSR1
STILL_SERVED_PREFIXES = ("/hooks/",)
RETRY_AFTER_SECONDS = 5


class _State:
    draining = False
    in_flight = 0


state = _State()


def start_draining(signum=None, frame=None) -> None:
    state.draining = True


def install_signal_handler() -> None:
    try:
        signal.signal(DRAIN_SIGNAL, start_draining)
    except ValueError:  # not the main thread (a test importing the module): nothing to drain
        pass


async def _answer(send, status: int, body: dict, headers: list[tuple[bytes, bytes]] = ()) -> None:
    payload = json.dumps(body).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                    *headers],
    })
    await send({"type": "http.response.body", "body": payload})


class DrainingMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if state.draining:
            path = scope.get("path", "")
            if path == "/healthz":
                return await _answer(send, 200, {"status": "draining", "in_flight": state.in_flight})
            if path == "/readyz":
                return await _answer(send, 503, {"status": "not_ready", "checks": {"draining": "shutting down"}})
            if not path.startswith(STILL_SERVED_PREFIXES):
                return await _answer(
                    send, 503,
                    {"code": "shutting_down", "detail": "This server is shutting down; retry shortly."},
                    [(b"retry-after", str(RETRY_AFTER_SECONDS).encode()), (b"connection", b"close")],
                )
        state.in_flight += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            state.in_flight -= 1
