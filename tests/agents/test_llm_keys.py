"""LLM endpoints and keys under the trust boundary: a tenant's URL goes through the egress
guard, a tenant cannot name an environment variable, the platform's key goes only to the
platform's URL and a tenant's key only to the URL it was stored with. The LLM server is a
real local server standing for the attacker (or the vendor)."""

import pytest

from agents import services
from agents.models import Agent, AgentConfig, AgentReply
from tests.agents.conftest import inbound, work_agents
from tests.conftest import client_for

pytestmark = pytest.mark.integration

PLATFORM_KEY = "sk-platform-operator-secret"


@pytest.fixture
def platform_llm(settings, monkeypatch):
    """The operator's own LLM endpoint and key (nothing listens there: it must not be called)."""
    monkeypatch.setenv("PLATFORM_LLM_KEY", PLATFORM_KEY)
    settings.AGENTS_LLM_BASE_URL = "http://127.0.0.1:9/v1"
    settings.AGENTS_LLM_MODEL = "platform-model"
    settings.AGENTS_LLM_API_KEY_ENV = "PLATFORM_LLM_KEY"


def llm_default_agent(tenant):
    return services.create_agent(tenant=tenant, name="Bot", kind=Agent.Kind.LLM, is_default=True,
                                 fallback_text="Back soon!")


def test_a_tenant_llm_url_on_a_private_address_is_refused_and_the_reply_falls_back_saying_why(
        wired_tenant, llm_server, settings, platform_llm):
    settings.EGRESS_ALLOW_PRIVATE_URLS = False
    services.update_agent_config(tenant=wired_tenant, llm_base_url=llm_server.url, llm_model="m",
                                 llm_api_key="sk-tenant-own")
    llm_default_agent(wired_tenant)

    message = inbound(wired_tenant, "Hello?")

    reply = work_agents(lambda: AgentReply.objects.filter(in_reply_to=message).first())
    assert (reply.source, reply.message.text) == ("fallback", "Back soon!")
    assert "EgressRefused: 127.0.0.1 is a loopback address" in reply.error
    assert "EGRESS_ALLOW_PRIVATE_URLS" in reply.error
    assert llm_server.requests == []  # refused once, not retried, nothing reached it


def test_the_platform_key_is_never_sent_to_a_tenant_url(wired_tenant, llm_server, platform_llm):
    # EGRESS_ALLOW_PRIVATE_URLS is on in these tests, so the request does reach the tenant's server
    services.update_agent_config(tenant=wired_tenant, llm_base_url=llm_server.url, llm_model="m")
    llm_default_agent(wired_tenant)

    message = inbound(wired_tenant, "Hello?")

    reply = work_agents(lambda: AgentReply.objects.filter(in_reply_to=message).first())
    assert reply.source == "llm" and len(llm_server.requests) == 1
    assert PLATFORM_KEY not in str(llm_server.requests[0].headers)
    assert "authorization" not in llm_server.requests[0].headers


def test_the_platform_url_is_the_operators_own_and_gets_the_platform_key(wired_tenant, llm_server, settings,
                                                                         monkeypatch):
    # not guarded (the operator trusts it), so even with private addresses refused it is called
    settings.EGRESS_ALLOW_PRIVATE_URLS = False
    monkeypatch.setenv("PLATFORM_LLM_KEY", PLATFORM_KEY)
    settings.AGENTS_LLM_BASE_URL, settings.AGENTS_LLM_MODEL = llm_server.url, "platform-model"
    settings.AGENTS_LLM_API_KEY_ENV = "PLATFORM_LLM_KEY"
    llm_default_agent(wired_tenant)

    message = inbound(wired_tenant, "Hello?")

    assert work_agents(lambda: AgentReply.objects.filter(in_reply_to=message).first()).source == "llm"
    assert llm_server.requests[0].headers["authorization"] == f"Bearer {PLATFORM_KEY}"


def test_a_tenant_key_goes_only_to_the_url_it_was_stored_with(wired_tenant, llm_server, platform_llm):
    services.update_agent_config(tenant=wired_tenant, llm_base_url=llm_server.url, llm_model="m",
                                 llm_api_key="sk-tenant-own")
    agent = llm_default_agent(wired_tenant)
    first = inbound(wired_tenant, "Hello?")
    work_agents(lambda: AgentReply.objects.filter(in_reply_to=first).exists())
    assert llm_server.requests[0].headers["authorization"] == "Bearer sk-tenant-own"

    # an agent pointed elsewhere ("localhost" standing for another host; same server) gets no key
    services.update_agent(agent=agent, llm_base_url=llm_server.url.replace("127.0.0.1", "localhost"))
    second = inbound(wired_tenant, "Anyone?")
    work_agents(lambda: AgentReply.objects.filter(in_reply_to=second).exists())
    assert "authorization" not in llm_server.requests[1].headers


def test_tenants_cannot_name_an_environment_variable_through_the_api(wired_tenant):
    api = client_for(wired_tenant)

    config = api.patch("/api/v1/agents/config", {"llm_api_key_env": "SECRET_KEY"}, format="json")
    created = api.post("/api/v1/agents", {"name": "Thief", "kind": "llm", "llm_base_url": "https://evil.example",
                                          "llm_api_key_env": "DATABASE_URL"}, format="json")

    assert (config.status_code, created.status_code) == (400, 400)
    for response in (config, created):
        assert "environment variable is for platform staff" in str(response.json())
    assert not AgentConfig.objects.filter(tenant=wired_tenant).exclude(llm_api_key_env="").exists()
    assert not Agent.objects.filter(tenant=wired_tenant, name="Thief").exists()
    # clearing one is allowed
    assert api.patch("/api/v1/agents/config", {"llm_api_key_env": ""}, format="json").status_code == 200


def test_changing_the_url_without_the_key_is_refused_and_the_key_is_never_returned(wired_tenant):
    api = client_for(wired_tenant)
    assert api.patch("/api/v1/agents/config", {"llm_base_url": "https://llm.shop.test/v1", "llm_api_key": "sk-own"},
                     format="json").status_code == 200

    moved = api.patch("/api/v1/agents/config", {"llm_base_url": "https://collector.evil.test/v1"}, format="json")
    again = api.patch("/api/v1/agents/config", {"llm_base_url": "https://llm2.shop.test/v1", "llm_api_key": "sk-new"},
                      format="json")
    shown = api.get("/api/v1/agents/config").json()

    assert moved.status_code == 400 and "Give llm_api_key again" in str(moved.json())
    assert again.status_code == 200
    assert shown["llm_api_key_set"] is True and "sk-new" not in str(shown) and "llm_api_key" not in shown
    config = AgentConfig.objects.get(tenant=wired_tenant)
    assert (config.llm_api_key, config.llm_api_key_url) == ("sk-new", "https://llm2.shop.test/v1")
