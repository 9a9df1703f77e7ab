"""A tenant's regular expression cannot stop the platform (issue 13).

The race under test: a tenant's regex trigger with catastrophic backtracking
(`(a+)+$`) meets a message that almost matches. Before, the `ai` job ran the
triggers inside the routing transaction; on SQLite that transaction holds the
database's one write lock, so for as long as the pattern ran (300 s, the job
timeout) every write of every tenant waited and then failed. Now the pattern
runs outside any transaction under AGENTS_PATTERN_TIMEOUT_MS, times out, and
its trigger ends disabled with a reason the tenant is told about, while the
other triggers decide the conversation.

The ai job runs in a real worker process (`manage.py run_worker_pool ai`) on
the test database, so the test thread can write beside it and time the writes.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
from django.core.management import call_command
from rq.job import Job

from agents import services
from agents.models import Agent, AgentReply, AgentSwitch, Trigger
from messaging.models import Message
from tests.agents.conftest import inbound, work_agents
from tests.bridges.conftest import REPO_ROOT, webhook_receiver  # noqa: F401  (fixture)
from tests.conftest import client_for
from tests.messaging.conftest import work_until
from tests.processes import stop_group, shared_database_url
from tests.waiting import wait_until
from waplatform.models import OutboxEvent
from waplatform.redis import get_redis

pytestmark = pytest.mark.integration

CATASTROPHIC = "(a+)+$"
# Long enough that the pattern would run for minutes; MAX_TEXT (4,096) is what a pattern sees.
ALMOST_MATCHING = "a" * 4000 + "!"
# CPU time the worker gives the pattern before it gives up: long enough to write beside it.
SLOW_LIMIT_MS = 3000
# A write held behind the evaluation would wait for all of it (at least SLOW_LIMIT_MS of
# CPU); one that is not held back takes a small part of it, even on a loaded machine.
WRITE_BOUND_SECONDS = SLOW_LIMIT_MS / 1000


@pytest.fixture
def ai_worker_process(transactional_db):
    """Starts a real `ai` worker pool process on the test database; killed at the end."""
    processes = []

    def start(**env: str) -> subprocess.Popen:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker_pool", "ai", "--num-workers", "1"], cwd=REPO_ROOT,
            env={**os.environ, "DATABASE_URL": shared_database_url(), "EGRESS_ALLOW_PRIVATE_URLS": "true", **env},
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        processes.append(process)
        return process

    yield start
    for process in processes:
        stop_group(process, signal.SIGKILL)


def test_the_api_refuses_a_catastrophic_pattern_and_says_why(api_client, tenant):
    sales = services.create_agent(tenant=tenant, name="Sales", kind=Agent.Kind.KNOWLEDGE_BASE)
    url = f"/api/v1/agents/{sales.pk}/triggers"

    nested = api_client.post(url, {"kind": "regex", "pattern": CATASTROPHIC}, format="json")
    # No nested repeat to see, but it backtracks on a run of "a": found by the trial match.
    overlapping = api_client.post(url, {"kind": "regex", "pattern": "(a|aa)+$"}, format="json")
    fine = api_client.post(url, {"kind": "regex", "pattern": r"\border\s*#?\d{4,}\b"}, format="json")

    assert nested.status_code == 400 and nested.json()["code"] == "invalid"
    assert "'(a+)+'" in nested.json()["detail"] and "nested quantifiers" in nested.json()["detail"]
    assert overlapping.status_code == 400
    assert "catastrophic backtracking" in overlapping.json()["detail"]
    assert "50 ms" in overlapping.json()["detail"]
    assert fine.status_code == 201 and fine.json()["disabled_reason"] == ""
    assert list(Trigger.objects.values_list("pattern", flat=True)) == [r"\border\s*#?\d{4,}\b"]


@pytest.mark.timeout(150)
def test_a_catastrophic_pattern_is_disabled_while_other_tenants_keep_writing(
        wired_tenant, platform, hook_relay, ai_worker_process, webhook_receiver, settings):  # noqa: F811
    # given tenant A, whose old trigger row holds a catastrophic pattern (saved before the
    # check existed: written directly, as a migration would have left it), above a sane one
    settings.AGENTS_DEBOUNCE_SECONDS = 0  # the job is queued at once: the worker pool has no scheduler to wait for
    tenant_a, tenant_b = wired_tenant, platform.tenant
    services.create_agent(tenant=tenant_a, name="Bot", kind=Agent.Kind.KNOWLEDGE_BASE, is_default=True)
    support = services.create_agent(tenant=tenant_a, name="Support", kind=Agent.Kind.KNOWLEDGE_BASE,
                                    fallback_text="Support here: what happened?")
    evil = Trigger.objects.create(tenant=tenant_a, agent=support, kind="regex", pattern=CATASTROPHIC, priority=10)
    sane = services.create_trigger(tenant=tenant_a, agent=support, kind="regex", pattern=r"!\s*$")
    assert client_for(tenant_a).post("/api/v1/webhooks", {"url": webhook_receiver.url,
                                                          "event_types": ["trigger.disabled"]},
                                     format="json").status_code == 201
    ai_worker_process(AGENTS_PATTERN_TIMEOUT_MS=str(SLOW_LIMIT_MS))

    # when one almost-matching message reaches A and the worker starts evaluating it
    message = inbound(tenant_a, ALMOST_MATCHING)
    job_id = services.respond_job_id(message.pk)
    wait_until(lambda: (job := Job.fetch(job_id, connection=get_redis())) and job.get_status() == "started", timeout=30)

    # then meanwhile tenant B's inbound message (the bridge's signed webhook) is stored
    # and its send accepted, each well within the bound
    received_before = len(hook_relay.requests)
    call_command("simulate_inbound", tenant_b.slug, "--from", "4915199999999", "--text", "still there?")
    hook_relay.wait_for(received_before + 1)
    started = time.monotonic()
    hook_relay.pump()
    inbound_seconds = time.monotonic() - started
    started = time.monotonic()
    sent = platform.api.post("/api/v1/messages", {"to": "4915199999999", "text": {"body": "yes!"}}, format="json")
    send_seconds = time.monotonic() - started
    still_evaluating = Job.fetch(job_id, connection=get_redis()).get_status() == "started"

    assert Message.objects.filter(tenant=tenant_b, direction="in", text="still there?").exists()
    assert sent.status_code == 202, sent.content
    assert (inbound_seconds < WRITE_BOUND_SECONDS, send_seconds < WRITE_BOUND_SECONDS) == (True, True), \
        (inbound_seconds, send_seconds)
    assert still_evaluating, "the measurements must overlap the pattern's run"

    # then the catastrophic trigger ends disabled with a reason, and the sane one routed the message
    evil = wait_until(lambda: (t := Trigger.objects.get(pk=evil.pk)) and not t.active and t, timeout=60)
    assert f"longer than {SLOW_LIMIT_MS} ms" in evil.disabled_reason and evil.disabled_at is not None
    reply = wait_until(lambda: AgentReply.objects.filter(in_reply_to=message).first(), timeout=30)
    switch = AgentSwitch.objects.get(conversation_id=message.conversation_id)
    assert (switch.to_agent, switch.trigger_id, reply.agent) == (support, sane.pk, support)
    assert Trigger.objects.get(pk=sane.pk).active

    # and the tenant is told: through its webhook, and the API shows why
    work_until(lambda: webhook_receiver.delivered, "webhooks")
    [told] = webhook_receiver.wait_for(1)
    body = told.json()
    assert (body["type"], body["data"]["trigger_id"], body["data"]["message_id"]) == \
        ("trigger.disabled", evil.pk, message.pk)
    assert body["data"]["reason"] == evil.disabled_reason
    shown = client_for(tenant_a).get(f"/api/v1/agents/{support.pk}/triggers/{evil.pk}").json()
    assert (shown["active"], shown["disabled_reason"]) == (False, evil.disabled_reason)

    # and B's message goes out through its bridge as usual
    work_until(lambda: Message.objects.get(pk=sent.json()["id"]).status in ("sent", "delivered", "read"))


def test_reactivating_a_disabled_trigger_clears_its_reason(api_client, tenant):
    sales = services.create_agent(tenant=tenant, name="Sales", kind=Agent.Kind.KNOWLEDGE_BASE)
    trigger = services.create_trigger(tenant=tenant, agent=sales, kind="regex", pattern=r"order \d+")
    assert services.disable_trigger(trigger_id=trigger.pk, reason="ran too long")
    assert not services.disable_trigger(trigger_id=trigger.pk, reason="again")  # one event per disabling

    response = api_client.patch(f"/api/v1/agents/{sales.pk}/triggers/{trigger.pk}", {"active": True}, format="json")

    assert response.status_code == 200
    assert (response.json()["active"], response.json()["disabled_reason"], response.json()["disabled_at"]) == \
        (True, "", None)


def test_routing_goes_on_with_the_other_triggers_when_one_times_out(wired_tenant, settings):
    """In-process variant at the default limit: the timed-out trigger is skipped for the
    rest of the run (not given another limit per message) and disabled once."""
    tenant = wired_tenant
    services.create_agent(tenant=tenant, name="Bot", kind=Agent.Kind.KNOWLEDGE_BASE, is_default=True)
    support = services.create_agent(tenant=tenant, name="Support", kind=Agent.Kind.KNOWLEDGE_BASE)
    evil = Trigger.objects.create(tenant=tenant, agent=support, kind="regex", pattern="(a|aa)+$", priority=5)
    services.create_trigger(tenant=tenant, agent=support, kind="keyword", keywords=["help"])

    first = inbound(tenant, "a" * 40 + "!")
    second = inbound(tenant, "help " + "a" * 40 + "!")
    work_agents(lambda: AgentReply.objects.filter(in_reply_to=second).exists())

    evil.refresh_from_db()
    assert not evil.active and "longer than 50 ms" in evil.disabled_reason
    switch = AgentSwitch.objects.get(conversation_id=first.conversation_id)
    assert (switch.to_agent, switch.message_id) == (support, second.pk)
    assert OutboxEvent.objects.filter(type="trigger.disabled", tenant_id=tenant.pk).count() == 1

