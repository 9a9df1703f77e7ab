"""Agents run for real here: events after commit, reply jobs on a real Redis `ai`
queue drained by real rq workers (burst, scheduler included, so the debounce is
rq's own enqueue_in), a real sandbox worker process for the end-to-end tests,
and an OpenAI-compatible endpoint that is a real local HTTP server: the only
stub, at the HTTP layer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone

from messaging import services as messaging
from messaging.models import Message
from pooling import services as pooling
from pooling.bridges.base import BridgeEvent
from tests.bridges.conftest import free_port, spawn_sandbox  # noqa: F401  (fixture)
from tests.messaging.conftest import (  # noqa: F401  (fixtures, re-exported for this package)
    _messaging_settings,
    group_listener,
    hook_relay,
    platform,
    work,
    work_until,
)

AI_QUEUES = ("ai",)  # sends stay queued: the tests without a bridge only look at what agents wrote
WITH_SENDS = ("ai", "high", "medium", "low", "webhooks")
DEBOUNCE = 0.3


@pytest.fixture(autouse=True)
def _agent_settings(settings):
    settings.AGENTS_DEBOUNCE_SECONDS = DEBOUNCE
    settings.AGENTS_LLM_TIMEOUT_SECONDS = 2.0
    settings.AGENTS_LLM_MAX_ATTEMPTS = 2
    settings.AGENTS_LLM_RETRY_BASE_SECONDS = 0.05


def work_agents(until, queues=AI_QUEUES, timeout: float = 15.0):
    """Drain the queues (scheduled jobs that are due included) until `until` holds."""
    return work_until(until, *queues, timeout=timeout)


def settle(queues=AI_QUEUES, seconds: float = DEBOUNCE + 1.2) -> None:
    """Let every debounced job come due and run it: the window for a second, unwanted reply."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        work(*queues)
        time.sleep(0.1)
    work(*queues)


_counter = iter(range(10**9))


def inbound(tenant, text: str, sender: str = "4915112345678", name: str = "Ann") -> Message:
    """An inbound message through messaging's real intake (the bridge's parsed event)."""
    event = BridgeEvent(kind="message", session="test", provider_message_id=f"in-{next(_counter)}-{time.time_ns()}",
                        chat_id=sender, contact_name=name, text=text, message_type="text", timestamp=timezone.now())
    result = messaging.ingest_events(routed=[(tenant.pk, event)])
    return Message.objects.get(pk=result.received[0])


@pytest.fixture
def wired_tenant(transactional_db):
    """A tenant with a wanted WhatsApp session: sends are accepted (queued); no bridge is needed."""
    from tests.factories import TenantFactory

    tenant = TenantFactory()
    pooling.start_session(tenant=tenant, phone_number_id=f"pn{tenant.pk}")
    return tenant


@dataclass
class LLMServer:
    """An OpenAI-compatible /v1/chat/completions on loopback."""

    base_url: str
    reply: str = "Our red model is in stock."
    delay: float = 0.0
    status: int = 200
    usage: dict = field(default_factory=lambda: {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120})
    requests: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    port = free_port()
    server_state = LLMServer(base_url=f"http://127.0.0.1:{port}/v1")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
            server_state.requests.append(body)
            server_state.headers.append({k.lower(): v for k, v in self.headers.items()})
            time.sleep(server_state.delay)
            if self.path != "/v1/chat/completions":
                self.send_response(404)
                self.end_headers()
                return
            payload = json.dumps({
                "id": "chatcmpl-1", "object": "chat.completion", "model": body.get("model"),
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": server_state.reply}}],
                "usage": server_state.usage,
            }).encode()
            try:
                self.send_response(server_state.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out first: that is the point of the slow tests

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server_state
    server.shutdown()
    server.server_close()
