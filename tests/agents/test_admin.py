"""The operator's admin for agents: every edit goes through the services, and the
changelists cost a fixed number of queries however many rows there are."""

import pytest
from django.urls import reverse

from agents import selectors, services
from agents.models import Agent, AgentConfig, AgentReply, AgentSwitch, ConversationState, KnowledgeEntry, Trigger
from messaging.models import Contact, Conversation, Message
from tenants.models import Tenant
from tests.agents.conftest import inbound
from tests.factories import TenantFactory, tier


def _routed_agent(tenant, text):
    """Route one new inbound message of the tenant's only conversation; return the agent it ends on."""
    message = inbound(tenant, text)
    return services.route_inbound(conversation_id=message.conversation_id, up_to=message.pk).active_agent


@pytest.fixture
def routed_tenant(transactional_db):
    """A default agent and a sales agent that the keyword `price` hands conversations to.
    Transactional: the admin's commit is what replaces the trigger-cache stamp."""
    tenant = TenantFactory()
    services.create_agent(tenant=tenant, name="Help desk", kind="knowledge_base", is_default=True)
    sales = services.create_agent(tenant=tenant, name="Sales", kind="knowledge_base")
    trigger = services.create_trigger(tenant=tenant, kind="keyword", agent=sales, keywords=["price"])
    sales.refresh_from_db()  # the trigger bumped its version
    return tenant, sales, trigger


def test_a_trigger_edited_in_the_admin_is_seen_by_routing_at_once(admin_client, routed_tenant):
    tenant, sales, trigger = routed_tenant
    assert _routed_agent(tenant, "what does shipping cost?").name == "Help desk"  # specs now cached
    form = {"tenant": tenant.pk, "agent": sales.pk, "kind": "keyword", "keywords": '["cost"]', "match": "contains",
            "pattern": "", "office_hours": "[]", "priority": "0", "active": "on"}

    answer = admin_client.post(reverse("admin:agents_trigger_change", args=[trigger.pk]), form)

    assert answer.status_code == 302
    assert _routed_agent(tenant, "and what does returning cost?") == sales
    assert Agent.objects.get(pk=sales.pk).version == sales.version + 1


def test_triggers_deleted_in_the_admin_stop_routing_at_once(admin_client, routed_tenant):
    tenant, sales, trigger = routed_tenant
    assert selectors.compiled_triggers_for(tenant_id=tenant.pk).by_id(trigger.pk) is not None  # cached

    answer = admin_client.post(reverse("admin:agents_trigger_changelist"),
                               {"action": "delete_selected", "_selected_action": [trigger.pk], "post": "yes"})

    assert answer.status_code == 302
    assert not Trigger.objects.filter(pk=trigger.pk).exists()
    assert _routed_agent(tenant, "the price?").name == "Help desk"
    assert Agent.objects.get(pk=sales.pk).version == sales.version + 1


def test_a_trigger_deleted_from_its_agents_page_stops_routing_at_once(admin_client, routed_tenant):
    tenant, sales, trigger = routed_tenant
    assert selectors.compiled_triggers_for(tenant_id=tenant.pk).by_id(trigger.pk) is not None  # cached
    form = {"tenant": tenant.pk, "name": "Sales", "kind": "knowledge_base", "active": "on", "greeting": "",
            "fallback_text": "", "confidence_threshold": "", "on_low_confidence": "fallback", "llm_base_url": "",
            "llm_model": "", "llm_api_key_env": "", "temperature": "0.3", "system_prompt": "",
            "triggers-TOTAL_FORMS": "1", "triggers-INITIAL_FORMS": "1", "triggers-0-id": trigger.pk,
            "triggers-0-agent": sales.pk, "triggers-0-DELETE": "on",
            "knowledge-TOTAL_FORMS": "0", "knowledge-INITIAL_FORMS": "0"}

    answer = admin_client.post(reverse("admin:agents_agent_change", args=[sales.pk]), form)

    assert answer.status_code == 302
    assert not Trigger.objects.filter(pk=trigger.pk).exists()
    assert _routed_agent(tenant, "the price?").name == "Help desk"


def test_an_agent_switched_off_in_the_admin_gets_no_more_conversations(admin_client, routed_tenant):
    tenant, sales, _ = routed_tenant
    assert selectors.compiled_triggers_for(tenant_id=tenant.pk).default_agent_id is not None  # cached
    form = {"name": "Sales", "kind": "knowledge_base", "greeting": "", "fallback_text": "",
            "confidence_threshold": "", "on_low_confidence": "fallback", "llm_base_url": "", "llm_model": "",
            "llm_api_key_env": "", "temperature": "0.3", "system_prompt": "",
            "triggers-TOTAL_FORMS": "0", "triggers-INITIAL_FORMS": "0",
            "knowledge-TOTAL_FORMS": "0", "knowledge-INITIAL_FORMS": "0"}  # `active` unticked

    answer = admin_client.post(reverse("admin:agents_agent_change", args=[sales.pk]), form)

    assert answer.status_code == 302
    assert _routed_agent(tenant, "the price?").name == "Help desk"


AGENT_FORM = {"kind": "knowledge_base", "active": "on", "greeting": "", "fallback_text": "",
              "confidence_threshold": "", "on_low_confidence": "fallback", "llm_base_url": "", "llm_model": "",
              "llm_api_key_env": "", "temperature": "0.3", "system_prompt": "",
              "triggers-TOTAL_FORMS": "0", "triggers-INITIAL_FORMS": "0",
              "knowledge-TOTAL_FORMS": "0", "knowledge-INITIAL_FORMS": "0"}


def test_ticking_default_on_another_agent_moves_the_flag_to_it(admin_client, routed_tenant):
    tenant, sales, _ = routed_tenant
    help_desk = Agent.objects.get(tenant=tenant, name="Help desk")

    answer = admin_client.post(reverse("admin:agents_agent_change", args=[sales.pk]),
                               {**AGENT_FORM, "name": "Sales", "is_default": "on"})

    assert answer.status_code == 302, answer.context["adminform"].form.errors
    assert list(Agent.objects.filter(tenant=tenant, is_default=True)) == [sales]
    assert Agent.objects.get(pk=help_desk.pk).version == help_desk.version + 1  # its cached answers are stale
    assert _routed_agent(tenant, "hello").name == "Sales"


def test_an_agent_added_as_default_takes_the_flag_from_the_old_one(admin_client, routed_tenant):
    tenant, _, _ = routed_tenant

    answer = admin_client.post(reverse("admin:agents_agent_add"),
                               {**AGENT_FORM, "tenant": tenant.pk, "name": "Night desk", "is_default": "on"})

    assert answer.status_code == 302, answer.context["adminform"].form.errors
    assert [a.name for a in Agent.objects.filter(tenant=tenant, is_default=True)] == ["Night desk"]


def test_taking_the_default_flag_leaves_other_tenants_default_alone(admin_client, routed_tenant):
    tenant, sales, _ = routed_tenant
    other = TenantFactory()
    other_default = services.create_agent(tenant=other, name="Help desk", kind="knowledge_base", is_default=True)

    admin_client.post(reverse("admin:agents_agent_change", args=[sales.pk]),
                      {**AGENT_FORM, "name": "Sales", "is_default": "on"})

    assert Agent.objects.get(pk=other_default.pk).is_default


def test_what_the_service_refuses_the_admin_form_shows(admin_client, routed_tenant):
    tenant, sales, trigger = routed_tenant
    form = {"tenant": tenant.pk, "agent": sales.pk, "kind": "regex", "keywords": "[]", "match": "contains",
            "pattern": "(unclosed", "office_hours": "[]", "priority": "0", "active": "on"}

    answer = admin_client.post(reverse("admin:agents_trigger_change", args=[trigger.pk]), form)

    assert answer.status_code == 200  # the form again, with the reason
    assert answer.context["adminform"].form.errors
    assert Trigger.objects.get(pk=trigger.pk).kind == "keyword"


def test_the_agent_config_admin_bumps_the_llm_agents(admin_client, tenant):
    llm_agent = services.create_agent(tenant=tenant, name="Writer", kind="llm")
    form = {"tenant": tenant.pk, "llm_base_url": "https://llm.example.com/v1", "llm_model": "m1",
            "llm_api_key_env": ""}

    added = admin_client.post(reverse("admin:agents_agentconfig_add"), form)
    config = AgentConfig.objects.get(tenant=tenant)
    deleted = admin_client.post(reverse("admin:agents_agentconfig_delete", args=[config.pk]), {"post": "yes"})

    assert (added.status_code, deleted.status_code) == (302, 302)
    assert not AgentConfig.objects.filter(tenant=tenant).exists()
    assert Agent.objects.get(pk=llm_agent.pk).version == llm_agent.version + 2  # once per change of endpoint


# --- N+1 guards: one page of 10 rows and of 1,000 rows cost the same few queries ---------


def _conversations(tenant, count):
    contacts = Contact.objects.bulk_create(
        Contact(tenant=tenant, wa_id=f"49151{i:07d}", name=f"Contact {i}") for i in range(count))
    return Conversation.objects.bulk_create(Conversation(tenant=tenant, contact=c) for c in contacts)


def _rows(model, count):
    tenant = TenantFactory()
    agents = Agent.objects.bulk_create(
        Agent(tenant=tenant, name=f"Agent {i}", kind="knowledge_base") for i in range(max(count, 2)))
    if model is Agent:
        return
    if model is Trigger:
        Trigger.objects.bulk_create(
            Trigger(tenant=tenant, agent=agents[i], kind="keyword", keywords=[f"k{i}"]) for i in range(count))
    elif model is KnowledgeEntry:
        KnowledgeEntry.objects.bulk_create(
            KnowledgeEntry(agent=agents[i], question=f"q{i}", answer=f"a{i}") for i in range(count))
    elif model is AgentConfig:
        standard = tier("standard")
        tenants = Tenant.objects.bulk_create(
            Tenant(name=f"Config tenant {i}", slug=f"config-{count}-{i}", tier=standard)
            for i in range(count))
        AgentConfig.objects.bulk_create(AgentConfig(tenant=t, llm_model="m") for t in tenants)
    elif model is ConversationState:
        ConversationState.objects.bulk_create(
            ConversationState(tenant=tenant, conversation=c, active_agent=agents[i])
            for i, c in enumerate(_conversations(tenant, count)))
    elif model is AgentSwitch:
        conversations = _conversations(tenant, count)
        triggers = Trigger.objects.bulk_create(
            Trigger(tenant=tenant, agent=agents[i], kind="keyword", keywords=[f"k{i}"]) for i in range(count))
        AgentSwitch.objects.bulk_create(
            AgentSwitch(tenant=tenant, conversation=c, from_agent=agents[i], to_agent=agents[i - 1],
                        trigger=triggers[i], reason="trigger") for i, c in enumerate(conversations))
    elif model is AgentReply:
        conversations = _conversations(tenant, count)
        messages = Message.objects.bulk_create(
            Message(tenant=tenant, conversation=c, contact_id=c.contact_id, direction="out", status="queued",
                    text="hi") for c in conversations)
        AgentReply.objects.bulk_create(
            AgentReply(tenant=tenant, conversation=c, agent=agents[i], message=m, source="knowledge_base")
            for i, (c, m) in enumerate(zip(conversations, messages)))


CHANGELISTS = [Agent, Trigger, KnowledgeEntry, AgentConfig, ConversationState, AgentSwitch, AgentReply]


@pytest.mark.parametrize("rows", [10, 1000])
@pytest.mark.parametrize("model", CHANGELISTS, ids=lambda m: m._meta.model_name)
def test_changelists_cost_a_fixed_number_of_queries(admin_client, django_assert_max_num_queries, model, rows):
    _rows(model, rows)
    assert model.objects.count() >= rows
    url = reverse(f"admin:agents_{model._meta.model_name}_changelist")

    with django_assert_max_num_queries(10):
        answer = admin_client.get(url)

    assert answer.status_code == 200
    assert len(answer.context["cl"].result_list) == min(rows, answer.context["cl"].list_per_page)
