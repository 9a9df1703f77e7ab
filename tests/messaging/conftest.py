"""Messaging runs for real here: a sandbox worker process as the tenant's slot, the
platform served by pytest-django's live server (the sandbox posts its signed
webhooks to it), jobs on a real Redis drained by real rq workers in burst mode,
and tenant webhook receivers that are real local HTTP servers.

Tests that run jobs use transactional databases: everything that leaves the
database (enqueues, events, webhooks) happens after commit.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import django_rq
import pytest
from channels.layers import get_channel_layer

from messaging.live import tenant_group
from pooling import services as pooling
from pooling.models import Slot, WhatsAppSession
from tests.bridges.conftest import (  # noqa: F401  (fixtures, re-exported for this package)
    SANDBOX_API_KEY,
    SandboxWorker,
    WebhookReceiver,
    fixtures_dir,
    free_port,
    spawn_sandbox,
    webhook_receiver,
)
from tests.conftest import client_for
from tests.factories import TenantFactory

SEND_QUEUES = ("high", "medium", "low")


@pytest.fixture(autouse=True)
def _messaging_settings(settings):
    # Local receivers live on 127.0.0.1; production refuses private webhook hosts.
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    settings.PACING_JITTER_SECONDS = 0.02
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.05
    settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS = 0.2
    settings.MESSAGE_RETRY_BASE_SECONDS = 0.05
    settings.MESSAGE_RETRY_MAX_DELAY_SECONDS = 0.2
    settings.MESSAGE_SESSION_WAIT_SECONDS = 0.2
    settings.CLOUD_API_APP_SECRET = "cloud-app-secret"
    settings.CLOUD_API_VERIFY_TOKEN = "verify-me"
    settings.SANDBOX_AUTO_SCAN_SECONDS = 0.3


def work(*queues: str) -> None:
    """One burst of real workers on the queues, scheduled jobs that are due included."""
    django_rq.get_worker(*(queues or (*SEND_QUEUES, "webhooks", "maintenance"))).work(burst=True, with_scheduler=True)


def work_until(predicate: Callable[[], object], *queues: str, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        work(*queues)
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


@dataclass
class Platform:
    tenant: object
    api: object
    sandbox: SandboxWorker
    slot: Slot
    session: WhatsAppSession


def start_working_session(tenant, sandbox: SandboxWorker, live_server_url: str, settings) -> Platform:
    """A tenant whose WhatsApp session is WORKING on a static slot backed by a real sandbox worker."""
    settings.PUBLIC_BASE_URL = live_server_url
    slot = Slot.objects.filter(base_url=sandbox.base_url).first() or pooling.register_static_slot(
        dialect="sandbox", base_url=sandbox.base_url, api_key=sandbox.api_key, tier=tenant.tier, capacity=3)
    pooling.start_session(tenant=tenant)
    work_until(lambda: WhatsAppSession.objects.filter(tenant=tenant, status="WORKING").exists(), "maintenance")
    return Platform(tenant=tenant, api=client_for(tenant), sandbox=sandbox, slot=slot,
                    session=WhatsAppSession.objects.get(tenant=tenant))


@pytest.fixture
def platform(transactional_db, live_server, spawn_sandbox, settings) -> Platform:
    tenant = TenantFactory()
    sandbox = spawn_sandbox(capacity=3, auto_scan_seconds=0.3, ack_delay=0.05, echo_delay=0.1)
    return start_working_session(tenant, sandbox, live_server.url, settings)


@dataclass
class StatusReceiver:
    """A tenant endpoint that answers a fixed status (after `fail_first` 500s when set)."""

    url: str
    status: int = 200
    hits: list[tuple[dict, bytes]] = field(default_factory=list)


@pytest.fixture
def status_receiver() -> Iterator[Callable[[int], StatusReceiver]]:
    servers = []

    def make(status: int) -> StatusReceiver:
        port = free_port()
        receiver = StatusReceiver(url=f"http://127.0.0.1:{port}/hook", status=status)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.hits.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


class GroupListener:
    """Listens on a tenant's Channels group from its own event loop, as a consumer would."""

    def __init__(self, tenant_id: int) -> None:
        self.events: list[dict] = []
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run(tenant_group(tenant_id))), daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "channel layer did not subscribe"

    async def _run(self, group: str) -> None:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        await layer.group_add(group, channel)
        self._ready.set()
        while not self._stop.is_set():
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=0.2)
            except asyncio.TimeoutError:
                continue
            self.events.append(message["event"])
        await layer.group_discard(group, channel)

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture
def group_listener():
    listeners: list[GroupListener] = []

    def listen(tenant_id: int) -> GroupListener:
        listeners.append(GroupListener(tenant_id))
        return listeners[-1]

    yield listen
    for listener in listeners:
        listener.close()
