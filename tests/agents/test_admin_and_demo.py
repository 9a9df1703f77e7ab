"""The demo seed and the operator's admin pages for agents."""

import pytest
from django.urls import reverse

from agents import demo, services
from agents.models import Agent, KnowledgeEntry, Trigger
from messaging import services as messaging
from tests.factories import TenantFactory

pytestmark = pytest.mark.django_db


def test_demo_seed_gives_each_tenant_a_kb_agent_and_a_human_behind_agent_idempotently():
    tenants = [TenantFactory(), TenantFactory()]

    demo.seed(tenants=tenants)
    demo.seed(tenants=tenants)

    for tenant in tenants:
        kb = Agent.objects.get(tenant=tenant, is_default=True)
        human = Agent.objects.get(tenant=tenant, kind="human")
        assert (kb.kind, KnowledgeEntry.objects.filter(agent=kb).count()) == ("knowledge_base", 12)
        handoff = Trigger.objects.get(tenant=tenant, kind="handoff")
        assert (handoff.agent, "agent" in handoff.keywords) == (human, True)
        assert Agent.objects.filter(tenant=tenant).count() == 2


def test_admin_pages_render_including_the_switch_log(admin_client, tenant):
    demo.seed(tenants=[tenant])
    kb, human = Agent.objects.get(tenant=tenant, is_default=True), Agent.objects.get(tenant=tenant, kind="human")
    contact = messaging.get_or_create_contact(tenant_id=tenant.pk, wa_id="4915112345678")
    conversation, _ = messaging.get_or_create_conversation(tenant_id=tenant.pk, contact=contact)
    services.set_active_agent(conversation=conversation, agent=kb)
    state = services.set_active_agent(conversation=conversation, agent=human)

    pages = [reverse(f"admin:agents_{name}_changelist") for name in
             ("agent", "trigger", "knowledgeentry", "agentconfig", "conversationstate", "agentswitch", "agentreply")]
    pages += [reverse("admin:agents_agent_change", args=[kb.pk]),
              reverse("admin:agents_conversationstate_change", args=[state.pk]),
              reverse("admin:agents_agentswitch_changelist") + f"?conversation={conversation.pk}"]

    answers = [admin_client.get(page) for page in pages]
    assert [a.status_code for a in answers] == [200] * len(pages)
    log = answers[-2].content.decode()
    assert "all switches of this conversation" in log and "Help desk" in log and "Human" in log


def test_admin_edit_of_an_agent_goes_through_the_service(admin_client, tenant):
    agent = services.create_agent(tenant=tenant, name="Bot", kind="knowledge_base")
    url = reverse("admin:agents_agent_change", args=[agent.pk])
    form = {"tenant": tenant.pk, "name": "Bot 2", "kind": "knowledge_base", "active": "on", "greeting": "",
            "fallback_text": "", "confidence_threshold": "", "on_low_confidence": "fallback", "llm_base_url": "",
            "llm_model": "", "llm_api_key_env": "", "temperature": "0.3", "system_prompt": "",
            "triggers-TOTAL_FORMS": "0", "triggers-INITIAL_FORMS": "0",
            "knowledge-TOTAL_FORMS": "1", "knowledge-INITIAL_FORMS": "0",
            "knowledge-0-question": "Hours?", "knowledge-0-answer": "9-5", "knowledge-0-tags": "[]"}

    answer = admin_client.post(url, form)

    agent.refresh_from_db()
    assert answer.status_code == 302
    assert (agent.name, agent.version, agent.knowledge.count()) == ("Bot 2", 3, 1)  # edit + new entry bumped it
