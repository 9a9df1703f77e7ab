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
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

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
from tests.http_receiver import HttpReceiver
from tests.waiting import wait_until

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


class HookRelay(HttpReceiver):
    """Receives bridge webhooks over HTTP (answering 200); `pump()` passes them to the platform's views."""

    def __init__(self) -> None:
        super().__init__(path="")
        self.answers: list[int] = []  # what the platform's views answered, in order
        self._pumped = 0

    def pump(self) -> int:
        client, count = Client(), 0
        while True:
            with self.condition:
                if self._pumped >= len(self.requests):
                    return count
                request = self.requests[self._pumped]
                self._pumped += 1
            headers = {k: v for k, v in request.headers.items() if k not in ("content-length", "host")}
            content_type = headers.pop("content-type", "application/json")
            response = client.generic("POST", request.path, data=request.body, content_type=content_type,
                                      headers=headers)
            self.answers.append(response.status_code)
            count += 1


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
    """Run the queues' jobs (and hand over bridge webhooks) until `predicate` holds; return its value."""
    return wait_until(predicate, step=lambda: work(*queues), timeout=timeout, interval=interval,
                      message=f"a condition while working {', '.join(queues) or 'every queue'}")


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
    pooling.assign_number(phone_number_id=phone_number_id, tenant=tenant)
    pooling.start_session(tenant=tenant, phone_number_id=phone_number_id)
    work_until(lambda: WhatsAppSession.objects.filter(tenant=tenant, status="WORKING").exists(), "maintenance")


@pytest.fixture
def platform(transactional_db, hook_relay, spawn_sandbox) -> Platform:
    tenant = TenantFactory()
    sandbox = spawn_sandbox(capacity=3, auto_scan_seconds=0.3, ack_delay=0.05, echo_delay=0.1)
    return start_working_session(tenant, sandbox)


@pytest.fixture
def status_receiver(http_receiver) -> Callable[[int], HttpReceiver]:
    """A tenant endpoint that answers a fixed status (change it with `.status`); `.requests` are its hits."""
    return lambda status: http_receiver(status=status)


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
