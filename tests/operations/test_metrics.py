import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from messaging.models import Message
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


def test_agent_replies_and_cache_lookups_show_in_metrics(db):
    from waplatform import counters

    counters.incr("cache_lookups", cache="triggers", result="hit")
    counters.incr("cache_lookups", cache="triggers", result="hit")
    counters.incr("cache_lookups", cache="ai_responses", result="miss")

    after = scrape()

    assert after[("wap_cache_lookups_total", (("cache", "triggers"), ("result", "hit")))] == 2
    assert after[("wap_cache_lookups_total", (("cache", "ai_responses"), ("result", "miss")))] == 1
