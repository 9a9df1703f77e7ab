import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from agents import services as agents
from agents.models import Agent, AgentReply
from messaging.models import Message
from tests.agents.conftest import llm_server  # noqa: F401  (fixture)
from tests.messaging.conftest import (  # noqa: F401  (fixtures)
    _messaging_settings,
    hook_relay,
    platform,
    work_until,
)
from tests.bridges.conftest import spawn_sandbox  # noqa: F401

pytestmark = pytest.mark.integration


def scrape(**headers) -> dict[tuple[str, tuple], float]:
    response = Client().get("/metrics", headers=headers)
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


SENT = ("wap_messages_total", (("direction", "out"), ("outcome", "sent"), ("tier", "standard")))
LATENCY_COUNT = ("wap_send_latency_seconds_count", (("tier", "standard"),))
RECEIVED = ("wap_messages_total", (("direction", "in"), ("outcome", "received"), ("tier", "standard")))
AGENT_LATENCY_COUNT = ("wap_agent_reply_latency_seconds_count", ())
AI_HIT = ("wap_cache_lookups_total", (("cache", "ai_responses"), ("result", "hit")))
AI_MISS = ("wap_cache_lookups_total", (("cache", "ai_responses"), ("result", "miss")))
WITH_AGENTS = ("ai", "high", "medium", "low", "webhooks", "maintenance")  # maintenance: the outbox relay


def test_metrics_parse_and_reflect_a_sent_message(platform):
    before = scrape()

    response = platform.api.post("/api/v1/messages", {"to": "15551230001", "type": "text", "text": {"body": "hi"}},
                                 format="json")
    assert response.status_code == 202, response.content
    work_until(lambda: Message.objects.filter(pk=response.json()["id"], status__in=["sent", "delivered", "read"]).exists())
    after = scrape()

    assert after[SENT] == before.get(SENT, 0) + 1
    assert after[LATENCY_COUNT] == before.get(LATENCY_COUNT, 0) + 1
    assert after[("wap_sessions", (("status", "WORKING"),))] == 1
    assert after[("wap_pool_utilisation_ratio", (("tier", "standard"),))] == pytest.approx(1 / 3)
    assert ("wap_queue_depth", (("queue", "high"),)) in after
    assert any(name == "wap_slot_sessions" for name, _ in after)


@override_settings(METRICS_TOKEN="s3cret")
def test_metrics_need_the_token_when_one_is_set(db):
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert Client().get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


@pytest.mark.parametrize("address", ["203.0.113.5", "10.0.0.8", "::ffff:198.51.100.1"])
def test_metrics_refuse_other_hosts_without_a_token(db, settings, address):
    settings.METRICS_TOKEN = ""
    outside = Client(REMOTE_ADDR=address)

    refused = outside.get("/metrics")

    assert refused.status_code == 403 and b"METRICS_TOKEN" in refused.content
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200


def test_metrics_answer_other_hosts_with_the_token(db, settings):
    settings.METRICS_TOKEN = "s3cret"
    outside = Client(REMOTE_ADDR="203.0.113.5")

    assert outside.get("/metrics").status_code == 403
    assert outside.get("/metrics", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_agent_replies_and_cache_lookups_show_in_metrics(platform, llm_server, settings):
    # given the tenant's default agent is an LLM (a local OpenAI-compatible stub), on a WORKING sandbox session
    settings.AGENTS_DEBOUNCE_SECONDS = 0.2
    agents.update_agent_config(tenant=platform.tenant, llm_base_url=llm_server.url, llm_model="m")
    agents.create_agent(tenant=platform.tenant, name="Sales", kind=Agent.Kind.LLM, is_default=True,
                        system_prompt="You sell bikes.", fallback_text="Back soon!")
    before = scrape()

    # when a contact writes twice the same words through the sandbox, and each answer goes out
    for n, text in enumerate(["Do you have red bikes?", "do you have  red bikes"], start=1):
        call_command("simulate_inbound", platform.tenant.slug, "--from", "4915112345678", "--text", text)
        work_until(lambda: AgentReply.objects.filter(message__status__in=["sent", "delivered", "read"]).count() == n,
                   *WITH_AGENTS, timeout=30)
    # The sends' events reach the metrics subscriber through the outbox relay, after the send.
    work_until(lambda: scrape().get(AGENT_LATENCY_COUNT, 0) >= before.get(AGENT_LATENCY_COUNT, 0) + 2,
               *WITH_AGENTS, timeout=30)
    after = scrape()

    # then /metrics counts both replies sent and timed, the LLM asked once and answered once from its cache
    assert len(llm_server.requests) == 1
    assert after[AGENT_LATENCY_COUNT] == before.get(AGENT_LATENCY_COUNT, 0) + 2
    assert after[SENT] == before.get(SENT, 0) + 2
    assert after[RECEIVED] == before.get(RECEIVED, 0) + 2
    assert after[AI_MISS] == before.get(AI_MISS, 0) + 1
    assert after[AI_HIT] == before.get(AI_HIT, 0) + 1
    trigger_lookups = [v - before.get(k, 0) for k, v in after.items() if k[0] == "wap_cache_lookups_total"
                       and ("cache", "triggers") in k[1]]
    assert sum(trigger_lookups) >= 2  # every inbound message looked the tenant's triggers up
