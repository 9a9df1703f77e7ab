"""Agents run for real here: events after commit, reply jobs on a real Redis `ai`
queue drained by real rq workers (burst, scheduler included, so the debounce is
rq's own enqueue_in), a real sandbox worker process for the end-to-end tests,
and an OpenAI-compatible endpoint that is the suite's real local HTTP receiver:
the only stub, at the HTTP layer.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from django.utils import timezone

from messaging import services as messaging
from messaging.models import Message
from pooling import services as pooling
from pooling.bridges.base import BridgeEvent
from tests.bridges.conftest import spawn_sandbox  # noqa: F401  (fixture)
from tests.http_receiver import Answer, HttpReceiver, Request
from tests.messaging.conftest import (  # noqa: F401  (fixtures, re-exported for this package)
    _messaging_settings,
    group_listener,
    hook_relay,
    platform,
    work,
    work_until,
)
from tests.waiting import hold_for

AI_QUEUES = ("ai",)  # sends stay queued: the tests without a bridge only look at what agents wrote
# With the outbox relay (maintenance): a batch's events reach subscribers through it.
WITH_SENDS = ("ai", "high", "medium", "low", "webhooks", "maintenance")
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
    hold_for(seconds, step=lambda: work(*queues))


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
    pooling.assign_number(phone_number_id=f"pn{tenant.pk}", tenant=tenant)
    pooling.start_session(tenant=tenant, phone_number_id=f"pn{tenant.pk}")
    return tenant


class LLMServer(HttpReceiver):
    """An OpenAI-compatible /v1/chat/completions on loopback (the suite's one HTTP receiver).

    `requests` holds what the platform sent (`.json()`, `.headers`); set `reply`,
    `usage`, `status` or `delay` to change the answers.
    """

    def __init__(self) -> None:
        super().__init__(path="/v1")
        self.reply = "Our red model is in stock."
        self.usage = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}

    def answer(self, request: Request) -> Answer:
        if request.path != "/v1/chat/completions":
            return Answer(404)
        return Answer(self.status, {
            "id": "chatcmpl-1", "object": "chat.completion", "model": request.json().get("model"),
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": self.reply}}],
            "usage": self.usage,
        })


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    server = LLMServer()
    yield server
    server.close()
