"""The sandbox worker's ASGI app: both dialects, plus /sandbox/* controls for tests and demos."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pooling.bridges.sandbox import cloud_api, media_api, waha_api
from pooling.bridges.sandbox.cloud_api import GraphError, graph_error
from pooling.bridges.sandbox.state import ECHO_PREFIX, Faults, Sandbox, SandboxConfig
from pooling.bridges.sandbox.waha_api import BadRequest, json_body, nest_error, sandbox_of

# Graph base URLs carry a version (https://graph.facebook.com/v21.0); accept and ignore it.
GRAPH_VERSION = re.compile(r"^/v\d+(\.\d+)?(?=/)")
KEYED_CONTROLS = ("/sandbox/inbound", "/sandbox/faults", "/sandbox/scan", "/sandbox/media/received", "/sandbox/sent")
OPEN_PATHS = ("/", "/ping", "/health")

FRONT_PAGE = (
    "WA Platform sandbox bridge worker — not WhatsApp.\n\n"
    "It simulates WhatsApp for demos and tests, speaking the WAHA and Cloud API dialects on loopback.\n"
    f"Nothing sent here reaches a phone. Recipients starting with {ECHO_PREFIX} echo back.\n"
    "See docs/bridges.md.\n"
)


async def front_page(request: Request) -> Response:
    return PlainTextResponse(FRONT_PAGE)


async def ping(request: Request) -> Response:
    return JSONResponse({"message": "pong"})


async def health(request: Request) -> Response:
    sandbox = sandbox_of(request)
    return JSONResponse({"status": "ok", "sandbox": True, "capacity": sandbox.config.capacity, "used": sandbox.used})


async def status(request: Request) -> Response:
    return JSONResponse(sandbox_of(request).status())


async def sent(request: Request) -> Response:
    """Every send accepted, oldest first (`?after=N` skips the first N): read-only."""
    try:
        after = max(0, int(request.query_params.get("after") or 0))
    except ValueError:
        raise BadRequest(400, "after must be an integer") from None
    return JSONResponse(list(sandbox_of(request).sent)[after:])


async def inbound(request: Request) -> Response:
    body = await json_body(request)
    sender = re.sub(r"\D", "", str(body.get("from") or ""))
    media = media_api.inbound_media(body.get("media"), base_url=str(request.base_url).rstrip("/"))
    text = body.get("text", "" if media else None)
    if not sender or not isinstance(text, str):
        raise BadRequest(400, "from (digits) and text (or media) are required")
    message_id = sandbox_of(request).inbound(str(body.get("session") or ""), sender, text,
                                             str(body.get("name") or ""), str(body.get("reply_to") or ""), media)
    if message_id is None:
        raise BadRequest(404, f"no session or Cloud number named {body.get('session')!r}")
    return JSONResponse({"id": message_id})


async def scan(request: Request) -> Response:
    body = await json_body(request)
    sandbox = sandbox_of(request)
    session = waha_api.find_session(request, body.get("session"))
    if not sandbox.scan(session):
        raise BadRequest(422, f"session {session.name} is {session.status}, not SCAN_QR_CODE")
    return JSONResponse(session.public())


def _crash() -> None:
    # A hard exit, no cleanup: the point is to look like a bridge that died.
    os._exit(1)


async def set_faults(request: Request) -> Response:
    body = await json_body(request)
    sandbox = sandbox_of(request)
    try:
        sandbox.faults = Faults(
            latency_ms=int(body.get("latency_ms") or 0),
            error_status=int(body.get("error_status") or 0),
            error_count=int(body.get("error_count") or (1 if body.get("error_status") else 0)),
            error_code=int(body["error_code"]) if body.get("error_code") is not None else None,
        )
    except (TypeError, ValueError):
        raise BadRequest(400, "latency_ms, error_status, error_count and error_code must be integers") from None
    if sandbox.faults.error_count and not 400 <= sandbox.faults.error_status <= 599:
        raise BadRequest(400, "error_status must be an HTTP error status (400-599)")
    answer = {"faults": vars(sandbox.faults), "crash": bool(body.get("crash"))}
    return JSONResponse(answer, background=BackgroundTask(_crash) if body.get("crash") else None)


async def clear_faults(request: Request) -> Response:
    sandbox_of(request).faults = Faults()
    return JSONResponse({"faults": vars(Faults())})


async def bad_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BadRequest)
    return nest_error(exc.status, exc.message)


async def graph_failure(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GraphError)
    return exc.response


class SandboxMiddleware:
    """Labels every answer as sandbox, checks the API key, and plays injected faults."""

    def __init__(self, app: ASGIApp, sandbox: Sandbox) -> None:
        self.app = app
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope = dict(scope, path=GRAPH_VERSION.sub("", scope["path"]) or "/")

        async def labelled(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"x-sandbox", b"true")]}
            await send(message)

        refusal = await self._guard(scope)
        await (refusal or self.app)(scope, receive, labelled)

    async def _guard(self, scope: Scope) -> Response | None:
        path: str = scope["path"]
        if not path.startswith("/sandbox/") and path != "/":
            faulted = await self._fault(path)
            if faulted is not None:
                return faulted
        if path.startswith("/api/") or path in KEYED_CONTROLS:
            headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
            query = parse_qs(scope.get("query_string", b"").decode())
            given = headers.get("x-api-key") or (query.get("x-api-key") or [""])[0]
            if not hmac.compare_digest(given.encode(), self.sandbox.config.api_key.encode()):
                return nest_error(401, "Unauthorized: wrong or missing X-Api-Key")
        return None

    async def _fault(self, path: str) -> Response | None:
        faults = self.sandbox.faults
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.error_count <= 0:
            return None
        faults.error_count -= 1
        status = faults.error_status
        graph_path = not path.startswith("/api/") and path not in OPEN_PATHS
        if faults.error_code is not None or graph_path:
            code = faults.error_code if faults.error_code is not None else (2 if status >= 500 else 100)
            return graph_error(status, code, "Sandbox injected fault")
        return nest_error(status, "Sandbox injected fault")


def create_app(config: SandboxConfig) -> ASGIApp:
    sandbox = Sandbox(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await sandbox.dispatcher.aclose()

    routes = [
        Route("/", front_page, methods=["GET"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/sandbox/status", status, methods=["GET"]),
        Route("/sandbox/sent", sent, methods=["GET"]),
        Route("/sandbox/inbound", inbound, methods=["POST"]),
        Route("/sandbox/scan", scan, methods=["POST"]),
        Route("/sandbox/faults", set_faults, methods=["POST"]),
        Route("/sandbox/faults", clear_faults, methods=["DELETE"]),
        *cloud_api.control_routes,
        *media_api.control_routes,
        *media_api.waha_routes,
        *waha_api.routes,
        *media_api.graph_routes,
        *cloud_api.graph_routes,
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    exception_handlers={BadRequest: bad_request, GraphError: graph_failure})
    app.state.sandbox = sandbox
    return SandboxMiddleware(app, sandbox)
