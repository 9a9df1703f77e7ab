"""Every trigger kind, precedence, office hours at controlled times, and refused definitions.

Evaluation goes through the tenant's compiled triggers as the reply job gets
them (agents.selectors.compiled_triggers_for: Redis and process caches included).
"""

from datetime import datetime, timezone as dt_timezone

import pytest

from agents import selectors, services
from agents.models import Agent
from tests.factories import TenantFactory

# Transactional: definitions invalidate the trigger cache after commit, as in production.
pytestmark = pytest.mark.django_db(transaction=True)

MONDAY_NOON_UTC = datetime(2026, 11, 30, 12, 0, tzinfo=dt_timezone.utc)


@pytest.fixture
def agents(tenant):
    default = services.create_agent(tenant=tenant, name="Bot", kind=Agent.Kind.KNOWLEDGE_BASE, is_default=True)
    sales = services.create_agent(tenant=tenant, name="Sales", kind=Agent.Kind.LLM)
    human = services.create_agent(tenant=tenant, name="Human", kind=Agent.Kind.HUMAN)
    return default, sales, human


def fired(tenant, text="", *, is_first=False, now=MONDAY_NOON_UTC):
    trigger = selectors.compiled_triggers_for(tenant_id=tenant.pk).evaluate(text=text, is_first=is_first, now=now)
    return trigger and trigger.id


@pytest.mark.parametrize("match, keyword, hits, misses", [
    ("equals", "price", ["Price", "  price! "], ["price please", "prices"]),
    ("contains", "agent", ["I want an AGENT now", "agent"], ["management", "agents"]),
    ("starts_with", "order", ["Order 1234 is late", "orders"], ["my order"]),
    ("ends_with", "thanks", ["ok, thanks!", "thanks"], ["thanks a lot"]),
])
def test_keyword_match_modes(tenant, agents, match, keyword, hits, misses):
    trigger = services.create_trigger(tenant=tenant, agent=agents[1], kind="keyword", keywords=[keyword], match=match)

    assert [fired(tenant, text) for text in hits] == [trigger.pk] * len(hits)
    assert [fired(tenant, text) for text in misses] == [None] * len(misses)


def test_case_sensitive_keyword_and_regex(tenant, agents):
    keyword = services.create_trigger(tenant=tenant, agent=agents[1], kind="keyword", keywords=["VIP"],
                                      case_sensitive=True)
    regex = services.create_trigger(tenant=tenant, agent=agents[1], kind="regex", pattern=r"\border\s*#?\d{4,}\b")

    assert (fired(tenant, "I am a VIP"), fired(tenant, "I am a vip")) == (keyword.pk, None)
    assert (fired(tenant, "Where is ORDER #12345?"), fired(tenant, "order 12")) == (regex.pk, None)


def test_first_message_trigger_fires_only_on_the_first(tenant, agents):
    trigger = services.create_trigger(tenant=tenant, agent=agents[1], kind="first_message")

    assert (fired(tenant, "hello", is_first=True), fired(tenant, "hello", is_first=False)) == (trigger.pk, None)


def test_office_hours_in_the_tenants_time_zone_at_controlled_times(agents):
    tenant = agents[0].tenant
    tenant.time_zone = "Europe/Berlin"
    tenant.save()
    open_hours = services.create_trigger(
        tenant=tenant, agent=agents[1], kind="office_hours",
        office_hours=[{"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}])

    at = lambda *args: datetime(*args, tzinfo=dt_timezone.utc)  # noqa: E731
    # Monday 07:30 UTC is 08:30 in Berlin (winter, UTC+1): closed; 08:30 UTC is 09:30: open.
    assert fired(tenant, now=at(2026, 11, 30, 7, 30)) is None
    assert fired(tenant, now=at(2026, 11, 30, 8, 30)) == open_hours.pk
    assert fired(tenant, now=at(2026, 11, 30, 16, 0)) is None  # 17:00 in Berlin: the end is exclusive
    assert fired(tenant, now=at(2026, 12, 5, 10, 0)) is None  # Saturday


def test_overnight_and_outside_office_hours(tenant, agents):
    night = services.create_trigger(tenant=tenant, agent=agents[1], kind="office_hours",
                                    office_hours=[{"days": [4], "start": "22:00", "end": "06:00"}])
    closed = services.create_trigger(tenant=tenant, agent=agents[0], kind="office_hours", outside_hours=True,
                                     priority=-1, office_hours=[{"days": [0, 1, 2, 3, 4, 5, 6],
                                                                 "start": "08:00", "end": "20:00"}])

    at = lambda *args: datetime(*args, tzinfo=dt_timezone.utc)  # noqa: E731
    # Friday 23:00 and Saturday 05:00 are in Friday's night range; Saturday 07:00 is only "closed".
    assert [fired(tenant, now=at(2026, 12, 4, 23)), fired(tenant, now=at(2026, 12, 5, 5)),
            fired(tenant, now=at(2026, 12, 5, 7)), fired(tenant, now=at(2026, 12, 5, 12))] == \
        [night.pk, night.pk, closed.pk, None]


def test_precedence_priority_then_kind_then_age(tenant, agents):
    default, sales, human = agents
    office = services.create_trigger(tenant=tenant, agent=sales, kind="office_hours",
                                     office_hours=[{"days": [0], "start": "00:00", "end": "23:59"}])
    first = services.create_trigger(tenant=tenant, agent=sales, kind="first_message")
    keyword = services.create_trigger(tenant=tenant, agent=sales, kind="keyword", keywords=["help"])
    regex = services.create_trigger(tenant=tenant, agent=sales, kind="regex", pattern="help")
    handoff = services.create_trigger(tenant=tenant, agent=human, kind="handoff", keywords=["help"])
    finish = services.create_trigger(tenant=tenant, agent=default, kind="finish", keywords=["help"])
    urgent = services.create_trigger(tenant=tenant, agent=sales, kind="keyword", keywords=["urgent"], priority=5)

    # equal priorities: finish > hand-off > keyword/regex (older first) > first message > office hours
    assert fired(tenant, "help urgent", is_first=True) == urgent.pk
    assert fired(tenant, "help", is_first=True) == finish.pk
    services.delete_trigger(trigger=finish)
    assert fired(tenant, "help", is_first=True) == handoff.pk
    services.delete_trigger(trigger=handoff)
    assert fired(tenant, "help", is_first=True) == keyword.pk
    services.delete_trigger(trigger=keyword)
    assert fired(tenant, "help", is_first=True) == regex.pk
    assert fired(tenant, "hi", is_first=True) == first.pk
    assert fired(tenant, "hi", is_first=False) == office.pk


def test_triggers_of_inactive_agents_do_not_fire(tenant, agents):
    services.create_trigger(tenant=tenant, agent=agents[1], kind="keyword", keywords=["sale"])

    services.update_agent(agent=agents[1], active=False)

    assert fired(tenant, "sale") is None


def test_bad_definitions_are_refused_with_clear_errors(api_client, tenant, agents):
    default, sales, human = agents
    url = f"/api/v1/agents/{sales.pk}/triggers"

    bad_regex = api_client.post(url, {"kind": "regex", "pattern": "order (\\d+"}, format="json")
    no_keywords = api_client.post(url, {"kind": "keyword", "keywords": ["!!"]}, format="json")
    bad_hours = api_client.post(url, {"kind": "office_hours", "office_hours": [{"days": [7], "start": "9",
                                                                               "end": "17:00"}]}, format="json")
    handoff_to_bot = api_client.post(url, {"kind": "handoff", "keywords": ["agent"]}, format="json")

    assert bad_regex.status_code == 400
    assert bad_regex.json()["code"] == "invalid"
    assert bad_regex.json()["detail"].startswith("pattern: Invalid regular expression 'order (\\\\d+'")
    assert "missing ), unterminated subpattern at position 6" in bad_regex.json()["detail"]
    assert no_keywords.status_code == 400 and "keyword" in no_keywords.json()["detail"]
    assert bad_hours.status_code == 400 and "weekdays 0-6" in bad_hours.json()["detail"]
    assert handoff_to_bot.status_code == 400 and "human agent" in handoff_to_bot.json()["detail"]
    assert not sales.triggers.exists()


def test_trigger_update_with_a_bad_regex_keeps_the_old_one(api_client, tenant, agents):
    trigger = services.create_trigger(tenant=tenant, agent=agents[1], kind="regex", pattern="refund")

    answer = api_client.patch(f"/api/v1/agents/{agents[1].pk}/triggers/{trigger.pk}", {"pattern": "[a-"},
                              format="json")

    assert answer.status_code == 400 and "Invalid regular expression" in answer.json()["detail"]
    trigger.refresh_from_db()
    assert trigger.pattern == "refund"


def test_another_tenants_agent_cannot_be_used(api_client, tenant, agents):
    foreign = services.create_agent(tenant=TenantFactory(), name="Theirs", kind=Agent.Kind.KNOWLEDGE_BASE)

    answers = [api_client.get(f"/api/v1/agents/{foreign.pk}"),
               api_client.post(f"/api/v1/agents/{foreign.pk}/triggers", {"kind": "keyword", "keywords": ["x"]},
                               format="json"),
               api_client.get(f"/api/v1/agents/{foreign.pk}/knowledge")]

    assert [a.status_code for a in answers] == [404, 404, 404]
