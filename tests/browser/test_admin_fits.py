"""Every admin changelist and operations page fits a 1024 px wide window.

Demo data is short; an operator's real data is not: message texts of a few
paragraphs, webhook URLs with long query strings, JSON payloads, error texts
with tracebacks, tenant names in full. A page that grows wider than the window
makes the operator scroll the whole page sideways to reach the action buttons;
long values are truncated (the full value in a title) and wide tables scroll
in their own box instead.
"""

import re
import uuid
from datetime import timedelta

import factory
import pytest
from django.contrib import admin
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.conftest import screenshot
from tests.factories import (
    AssignmentFactory, ContactFactory, ConversationFactory, MembershipFactory, MessageFactory, OperatorFactory,
    PendingStatusFactory, SlotFactory, TenantFactory, UserFactory, WebhookDeliveryFactory, WebhookEndpointFactory,
    tier,
)

pytestmark = pytest.mark.integration

WIDTH = 1024
WORDS = "Hello, I ordered the blue one last Tuesday and it still has not arrived; could you check the parcel " * 4
TOKEN = "x" * 180  # one unbroken word: a hash, a base64 blob, a URL without spaces
LONG_URL = f"https://hooks.example-customer-with-a-long-domain.com/api/v2/whatsapp/inbound?token={TOKEN}"
TRACEBACK = f"Traceback (most recent call last): ConnectionError('{LONG_URL}') " + WORDS


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "agents.Agent"

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"Support agent for the spring campaign with a long name {n}")
    kind = "knowledge_base"


class TriggerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "agents.Trigger"

    agent = factory.SubFactory(AgentFactory)
    tenant = factory.SelfAttribute("agent.tenant")
    kind = "keyword"
    keywords = factory.LazyFunction(lambda: [f"keyword-{n}-{WORDS[:30]}" for n in range(12)])
    pattern = TOKEN
    disabled_reason = WORDS[:400]


class KnowledgeEntryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "agents.KnowledgeEntry"

    agent = factory.SubFactory(AgentFactory)
    question = WORDS
    answer = WORDS
    tags = factory.LazyFunction(lambda: ["shipping", TOKEN])


class AgentConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "agents.AgentConfig"

    tenant = factory.SubFactory(TenantFactory)
    llm_base_url = LONG_URL[:480]
    llm_model = "an-llm-model-with-a-long-name-" + "m" * 90
    llm_api_key_env = "LLM_API_KEY_FOR_A_TENANT_WITH_A_LONG_NAME_" + "K" * 80


class ConversationStateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "agents.ConversationState"

    conversation = factory.SubFactory(ConversationFactory)
    tenant = factory.SelfAttribute("conversation.tenant")
    automation_paused_until = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=1))
    last_switch_at = factory.LazyFunction(timezone.now)


class AgentSwitchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "agents.AgentSwitch"

    conversation = factory.SubFactory(ConversationFactory)
    tenant = factory.SelfAttribute("conversation.tenant")
    reason = "low_confidence"
    note = WORDS[:250]


class AgentReplyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "agents.AgentReply"

    message = factory.SubFactory(MessageFactory, direction="out", status="sent", text=WORDS)
    conversation = factory.SelfAttribute("message.conversation")
    tenant = factory.SelfAttribute("message.tenant")
    source = "knowledge_base"
    confidence = 0.87


class SessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "pooling.WhatsAppSession"

    tenant = factory.SubFactory(TenantFactory)
    name = factory.Sequence(lambda n: f"session-of-a-tenant-with-a-long-slug-{n}")
    last_error = TRACEBACK


class SessionEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "pooling.SessionEvent"

    session = factory.SubFactory(SessionFactory)
    status = "failed"
    note = TRACEBACK[:250]


class CloudNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "pooling.CloudNumber"

    tenant = factory.SubFactory(TenantFactory)
    phone_number_id = factory.Sequence(lambda n: f"10987654321{n:04d}")
    source = "operator"
    display_phone_number = "+1 650 555 0100"


class PoolSnapshotFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "pooling.PoolSnapshot"

    tier = factory.LazyFunction(lambda: tier("standard"))
    taken_at = factory.LazyFunction(timezone.now)
    slots_by_state = factory.LazyFunction(lambda: {s: 12 for s in
                                                   ("provisioning", "ready", "degraded", "down", "draining")})
    capacity = 600
    used = 431
    waiting = 17


class AlertFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "operations.Alert"

    kind = "slot_down"
    key = factory.Sequence(lambda n: f"slot:{n}:" + "k" * 100)
    message = TRACEBACK


class OutboxEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "waplatform.OutboxEvent"

    event_id = factory.LazyFunction(uuid.uuid4)
    type = "message.status_changed.delivered.with.a.long.name"
    ordering_key = "conversation:" + "9" * 50
    envelope = factory.LazyFunction(lambda: {"data": {"text": WORDS}})
    pending = factory.LazyFunction(lambda: ["webhooks", "mirror", "inbox", "metrics", "a-long-subscriber-name" * 3])
    next_attempt_at = factory.LazyFunction(timezone.now)
    last_error = TRACEBACK


class MirrorStatusFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "mirror.MirrorStatus"

    tenant = factory.SubFactory(TenantFactory)
    last_event_id = "e" * 64
    last_event_type = "conversation.updated.with.a.long.type"
    last_event_at = factory.LazyFunction(timezone.now)
    last_synced_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=30))
    lag_seconds = 12345.678
    consecutive_failures = 12
    total_failures = 123456
    last_error = TRACEBACK
    last_error_at = factory.LazyFunction(timezone.now)


class DeadLetterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "mirror.DeadLetter"

    tenant = factory.SubFactory(TenantFactory)
    kind = "message"
    object_id = 9_876_543_210
    event_id = "e" * 64
    event_type = "message.received.with.a.long.type"
    attempts = 12
    error = TRACEBACK


class BacklogFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "mirror.Backlog"

    tenant = factory.SubFactory(TenantFactory)
    kind = "conversation"
    object_id = factory.Sequence(lambda n: 9_876_543_210 + n)


def _operator_data() -> None:
    """A few rows per model, each with the longest values the fields take."""
    tenant = TenantFactory(name="Northwind Traders International Customer Support and After-Sales Department for "
                                "the Spanish and Portuguese Speaking Markets",
                           slug="northwind-traders-international-" + "n" * 30, tier=tier("professional"))
    MembershipFactory(tenant=tenant, user=UserFactory(username="a.very.long.username.of.a.support.agent." + "u" * 50))
    slot = SlotFactory(tier=tenant.tier, name="waha-eu-west-1-production-shared-pool-for-business-tier-03",
                       base_url=LONG_URL[:190], state="degraded",
                       last_health_at=timezone.now(), last_health_error=TRACEBACK, consecutive_failures=7)
    AssignmentFactory(tenant=tenant, slot=slot)
    SlotFactory.create_batch(6, tenants=4, last_health_error=TRACEBACK)
    agent = AgentFactory(tenant=tenant)
    TriggerFactory(agent=agent)
    KnowledgeEntryFactory(agent=agent)
    AgentConfigFactory(tenant=tenant)
    for _ in range(3):
        contact = ContactFactory(tenant=tenant, name="Maria Fernanda de los Santos Gutiérrez y Fernández de Córdoba "
                                                      "(customer since 2019, VIP)")
        conversation = ConversationFactory(contact=contact, tenant=tenant)
        MessageFactory(conversation=conversation, text=WORDS)
        MessageFactory(conversation=conversation, text=TOKEN, direction="out", status="failed",
                       error_code="131047-" + "E" * 20)
        ConversationStateFactory(conversation=conversation, active_agent=agent)
        AgentSwitchFactory(conversation=conversation, from_agent=agent, to_agent=agent)
        AgentReplyFactory(message__conversation=conversation, agent=agent, in_reply_to=None)
    PendingStatusFactory(tenant=tenant, provider_message_id="wamid." + "H" * 120)
    endpoint = WebhookEndpointFactory(tenant=tenant, url=LONG_URL,
                                      event_types=["message.received", "message.status_changed", "session.updated",
                                                   "conversation.assigned", "conversation.resolved"])
    WebhookDeliveryFactory(endpoint=endpoint, event_type="message.status_changed", status="dead", attempts=12,
                           last_status_code=503, last_error=TRACEBACK, next_attempt_at=timezone.now())
    SessionEventFactory.create_batch(3, session=SessionFactory(tenant=tenant))
    CloudNumberFactory(tenant=tenant)
    PoolSnapshotFactory.create_batch(3)
    AlertFactory.create_batch(3)
    OutboxEventFactory.create_batch(3)
    MirrorStatusFactory(tenant=tenant)
    DeadLetterFactory.create_batch(3, tenant=tenant)
    BacklogFactory.create_batch(3, tenant=tenant)


def _pages() -> list[tuple[str, str]]:
    changelists = [
        (f"admin-{m._meta.app_label}-{m._meta.model_name}",
         reverse(f"admin:{m._meta.app_label}_{m._meta.model_name}_changelist"))
        for m in sorted(admin.site._registry, key=lambda m: m._meta.label)
    ]
    operations = [(f"ops-{name}", reverse(f"operations-{name}")) for name in ("pools", "costs", "queues", "health")]
    return [("admin-index", reverse("admin:index")), *changelists, *operations]


def test_every_changelist_and_operations_page_fits_a_1024_px_window(chromium, _module_platform, transactional_db):
    # given an operator's data with long values in every model the admin lists
    staff = OperatorFactory()
    _operator_data()
    context = chromium.new_context(viewport={"width": WIDTH, "height": 768})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{_module_platform.url}/admin/login/")
        page.fill("#id_username", staff.username)
        page.fill("#id_password", "pw-for-tests")
        page.click("input[type=submit]")
        expect(page).to_have_url(re.compile(r"/admin/$"))

        # when staff open each changelist and each operations page at 1024 px
        too_wide = {}
        for name, path in _pages():
            response = page.goto(f"{_module_platform.url}{path}")
            assert response.status == 200, f"{path} answered {response.status}"
            width = page.evaluate("document.scrollingElement.scrollWidth")
            screenshot(page, f"fits-{WIDTH}-{name}")
            if width > page.evaluate("window.innerWidth"):
                too_wide[path] = width

        # then none of them scrolls the page sideways
        assert too_wide == {}, f"pages wider than {WIDTH} px: {too_wide}"
        assert errors == []
    finally:
        context.close()
