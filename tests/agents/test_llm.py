"""The llm responder against a real local OpenAI-compatible server (the only stub, at the HTTP
layer): success with token usage and cost, context kept across a switch, timeout → fallback,
and the per-conversation response cache cleared by a switch."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from agents import selectors, services
from agents.models import Agent, AgentReply
from tests.agents.conftest import inbound, work_agents
from tests.conftest import client_for

pytestmark = pytest.mark.integration


@pytest.fixture
def llm_agent(wired_tenant, llm_server, monkeypatch):
    monkeypatch.setenv("SHOP_LLM_KEY", "sk-test-123")
    services.update_agent_config(tenant=wired_tenant, llm_base_url=llm_server.url, llm_model="shop-model-1",
                                 llm_api_key_env="SHOP_LLM_KEY")
    return services.create_agent(tenant=wired_tenant, name="Sales", kind=Agent.Kind.LLM, is_default=True,
                                 temperature=0.2, system_prompt="You sell bikes.", fallback_text="Back soon!")


def test_success_sends_the_completion_and_records_tokens_and_cost(llm_agent, llm_server, settings):
    settings.AGENTS_LLM_PRICE_PER_1K_PROMPT_TOKENS = "0.5"
    settings.AGENTS_LLM_PRICE_PER_1K_COMPLETION_TOKENS = "1.5"
    since = timezone.now() - timedelta(minutes=1)

    message = inbound(llm_agent.tenant, "Do you have the red bike?")

    reply = work_agents(lambda: AgentReply.objects.filter(in_reply_to=message).first())
    [request] = [r.json() for r in llm_server.requests]
    assert (reply.source, reply.message.text, reply.prompt_tokens, reply.completion_tokens) == \
        ("llm", "Our red model is in stock.", 100, 20)
    assert (request["model"], request["temperature"]) == ("shop-model-1", 0.2)
    assert request["messages"] == [{"role": "system", "content": "You sell bikes."},
                                   {"role": "user", "content": "Do you have the red bike?"}]
    assert llm_server.requests[0].headers["authorization"] == "Bearer sk-test-123"
    # 100 prompt tokens at 0.5/1k + 20 completion tokens at 1.5/1k
    assert selectors.ai_cost_for_tenant(tenant=llm_agent.tenant, since=since) == Decimal("0.08")


def test_the_new_agent_sees_the_whole_conversation_and_a_switch_note(llm_agent, llm_server):
    tenant = llm_agent.tenant
    services.update_agent(agent=llm_agent, is_default=False)
    desk = services.create_agent(tenant=tenant, name="Desk", kind=Agent.Kind.KNOWLEDGE_BASE, is_default=True)
    services.create_knowledge_entry(agent=desk, question="Where are you?", answer="12 Market Street.",
                                    tags=["address", "where", "located"])
    services.create_trigger(tenant=tenant, agent=llm_agent, kind="keyword", keywords=["bike"])
    first = inbound(tenant, "Where are you located?")
    work_agents(lambda: AgentReply.objects.filter(in_reply_to=first).exists())

    second = inbound(tenant, "and which bike fits a child?")
    work_agents(lambda: AgentReply.objects.filter(in_reply_to=second).exists())

    # the earlier exchange with Desk, the question that switched, then the note (it happened in that order)
    messages = llm_server.requests[0].json()["messages"]
    assert [(m["role"], m["content"]) for m in messages[:4]] == [
        ("system", "You sell bikes."), ("user", "Where are you located?"), ("assistant", "12 Market Street."),
        ("user", "and which bike fits a child?")]
    assert messages[4]["role"] == "system" and "handed from Desk to Sales" in messages[4]["content"]


def test_a_timeout_falls_back_to_the_fallback_text(llm_agent, llm_server, settings):
    settings.AGENTS_LLM_TIMEOUT_SECONDS = 0.2
    llm_server.delay = 0.6

    message = inbound(llm_agent.tenant, "Hello?")

    reply = work_agents(lambda: AgentReply.objects.filter(in_reply_to=message).first())
    assert (reply.source, reply.message.text, reply.prompt_tokens) == ("fallback", "Back soon!", 0)
    assert "ReadTimeout" in reply.error
    assert len(llm_server.requests) == settings.AGENTS_LLM_MAX_ATTEMPTS  # retried, then gave up


def test_a_server_error_is_retried_then_falls_back_and_a_4xx_is_not_retried(llm_agent, llm_server):
    llm_server.status = 503
    first = inbound(llm_agent.tenant, "Hello?")
    reply = work_agents(lambda: AgentReply.objects.filter(in_reply_to=first).first())
    assert (reply.source, len(llm_server.requests)) == ("fallback", 2)

    llm_server.status = 401
    second = inbound(llm_agent.tenant, "Anyone?")
    reply = work_agents(lambda: AgentReply.objects.filter(in_reply_to=second).first())
    assert (reply.source, len(llm_server.requests)) == ("fallback", 3)
    assert "401" in reply.error


def test_responses_are_cached_per_conversation_until_a_switch(llm_agent, llm_server):
    tenant = llm_agent.tenant
    api = client_for(tenant)
    desk = services.create_agent(tenant=tenant, name="Desk", kind=Agent.Kind.KNOWLEDGE_BASE)
    first = inbound(tenant, "Hello  there!")
    work_agents(lambda: AgentReply.objects.filter(in_reply_to=first).exists())

    # the same words again: answered from the cache, the LLM is not asked
    again = inbound(tenant, "hello there")
    cached = work_agents(lambda: AgentReply.objects.filter(in_reply_to=again).first())
    assert (len(llm_server.requests), cached.cached, cached.message.text) == (1, True, "Our red model is in stock.")

    # a switch away and back clears this conversation's cache: the LLM is asked again
    conversation = f"/api/v1/conversations/{first.conversation_id}"
    assert api.patch(conversation, {"active_agent": desk.pk}, format="json").status_code == 200
    assert api.patch(conversation, {"active_agent": llm_agent.pk}, format="json").status_code == 200
    third = inbound(tenant, "hello there")
    fresh = work_agents(lambda: AgentReply.objects.filter(in_reply_to=third).first())
    assert (len(llm_server.requests), fresh.cached) == (2, False)
