"""Messaging runs for real here: a sandbox worker process as the tenant's slot, its
signed webhooks fed to the platform's hook views, jobs on a real Redis drained by
real rq workers in burst mode, and tenant webhook receivers that are real local
HTTP servers.

The sandbox posts its webhooks to a relay (a local HTTP server) and the test
thread hands each one, raw body and headers untouched, to the platform through
Django's test client. Not pytest-django's live server: with SQLite's in-memory
test database the live server thread shares the test thread's one connection,
so a webhook arriving while a worker job runs a transaction would land inside
it. The relay keeps every database write on one thread, on SQLite and PostgreSQL.

Tests that run jobs use transactional databases: everything that leaves the
database (enqueues, events, webhooks) happens after commit.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import django_rq
import pytest
from channels.layers import get_channel_layer
from django.test import Client

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
    # Local receivers live on 127.0.0.1; production refuses private addresses (waplatform/egress.py).
    settings.EGRESS_ALLOW_PRIVATE_URLS = True
    settings.PACING_JITTER_SECONDS = 0.02
    settings.WEBHOOK_RETRY_BASE_SECONDS = 0.05
    settings.WEBHOOK_RETRY_MAX_DELAY_SECONDS = 0.2
    settings.MESSAGE_RETRY_BASE_SECONDS = 0.05
    settings.MESSAGE_RETRY_MAX_DELAY_SECONDS = 0.2
    settings.MESSAGE_SESSION_WAIT_SECONDS = 0.2
    settings.CLOUD_API_APP_SECRET = "cloud-app-secret"
    settings.CLOUD_API_VERIFY_TOKEN = "verify-me"
    settings.SANDBOX_AUTO_SCAN_SECONDS = 0.3


class HookRelay:
    """Receives bridge webhooks over HTTP; `pump()` passes them to the platform's views."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.inbox: queue.Queue = queue.Queue()
        self.answers: list[int] = []
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                relay.inbox.put((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def pump(self) -> int:
        client, count = Client(), 0
        while True:
            try:
                path, headers, body = self.inbox.get_nowait()
            except queue.Empty:
                return count
            content_type = headers.pop("Content-Type", "application/json")
            for name in ("Content-Length", "Host"):
                headers.pop(name, None)
            response = client.generic("POST", path, data=body, content_type=content_type, headers=headers)
            self.answers.append(response.status_code)
            count += 1

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_relays: list[HookRelay] = []


@pytest.fixture
def hook_relay(settings) -> Iterator[HookRelay]:
    relay = HookRelay()
    settings.PUBLIC_BASE_URL = relay.url
    _relays.append(relay)
    yield relay
    _relays.remove(relay)
    relay.close()


def pump() -> None:
    for relay in _relays:
        relay.pump()


def work(*queues: str) -> None:
    """Hand over received bridge webhooks, then one burst of real workers (due scheduled jobs included)."""
    pump()
    django_rq.get_worker(*(queues or (*SEND_QUEUES, "webhooks", "maintenance"))).work(burst=True, with_scheduler=True)
    pump()


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


def start_working_session(tenant, sandbox: SandboxWorker) -> Platform:
    """A tenant whose WhatsApp session is WORKING on a static slot backed by a real sandbox worker."""
    slot = Slot.objects.filter(base_url=sandbox.base_url).first() or pooling.register_static_slot(
        dialect="sandbox", base_url=sandbox.base_url, api_key=sandbox.api_key, tier=tenant.tier, capacity=3)
    pooling.start_session(tenant=tenant)
    work_until(lambda: WhatsAppSession.objects.filter(tenant=tenant, status="WORKING").exists(), "maintenance")
    return Platform(tenant=tenant, api=client_for(tenant), sandbox=sandbox, slot=slot,
                    session=WhatsAppSession.objects.get(tenant=tenant))


@pytest.fixture
def sending_tenant(db):
    """A tenant that wants a session; nothing runs it (no commit in a plain db test)."""
    tenant = TenantFactory()
    pooling.start_session(tenant=tenant)
    return tenant


@pytest.fixture
def api(sending_tenant):
    return client_for(sending_tenant)


def start_cloud_session(tenant, sandbox: SandboxWorker, phone_number_id: str = "106540352242922") -> None:
    """The tenant's Cloud API number, hosted by a real sandbox worker, WORKING."""
    pooling.register_static_slot(dialect="sandbox", base_url=sandbox.base_url, api_key=sandbox.api_key,
                                 tier=tenant.tier, capacity=3)
    pooling.start_session(tenant=tenant, phone_number_id=phone_number_id)
    work_until(lambda: WhatsAppSession.objects.filter(tenant=tenant, status="WORKING").exists(), "maintenance")


@pytest.fixture
def platform(transactional_db, hook_relay, spawn_sandbox) -> Platform:
    tenant = TenantFactory()
    sandbox = spawn_sandbox(capacity=3, auto_scan_seconds=0.3, ack_delay=0.05, echo_delay=0.1)
    return start_working_session(tenant, sandbox)


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
