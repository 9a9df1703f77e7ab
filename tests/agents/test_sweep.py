"""Agent replies get the outbox's guarantee (issue 14), and suspension stops agents (issue 13).

The reply job is scheduled after the inbound message commits; Redis emptied
between the two (or a worker killed mid-job) loses the job, never the message.
The agents sweep finds the message again. Everything runs through real rq
queues: the sweep is the cron job `agents.jobs.sweep`, the answers come from
`agents.jobs.respond` on `ai`.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from agents import services
from agents.models import Agent, AgentReply
from messaging.models import Message
from tenants.services import set_tenant_status
from tests.agents.conftest import inbound, settle, work_agents
from tests.conftest import client_for
from tests.messaging.conftest import work
from waplatform.queues import enqueue
from waplatform.redis import get_redis

pytestmark = pytest.mark.integration


@pytest.fixture
def help_desk(wired_tenant, settings):
    settings.AGENTS_SWEEP_GRACE_SECONDS = 0  # due as soon as the debounce window has passed
    agent = services.create_agent(tenant=wired_tenant, name="Help desk", kind=Agent.Kind.KNOWLEDGE_BASE,
                                  is_default=True)
    services.create_knowledge_entry(agent=agent, question="What are your opening hours?",
                                    answer="9 to 5, Monday to Friday.", tags=["hours", "open"])
    return wired_tenant


def run_sweep() -> None:
    """One round of the cron job, as rq's CronScheduler enqueues it."""
    enqueue("agents.jobs.sweep", queue="maintenance")
    work("maintenance")


def outbound_count(message: Message) -> int:
    return Message.objects.filter(conversation_id=message.conversation_id, direction="out").count()


def test_a_reply_job_lost_with_redis_is_answered_by_one_sweep_exactly_once(help_desk):
    # given an inbound message whose debounced reply job is lost when Redis is emptied
    message = inbound(help_desk, "When are you open?")
    get_redis().flushall()
    settle()  # past the debounce window: the job would have run by now
    assert not AgentReply.objects.filter(in_reply_to=message).exists()

    # when the sweep runs (twice: the second finds the job already queued and adds none)
    run_sweep()
    run_sweep()
    reply = work_agents(lambda: AgentReply.objects.filter(in_reply_to=message).first())
    run_sweep()  # answered: nothing left to find
    settle()

    # then it is answered once
    assert reply.message.text == "9 to 5, Monday to Friday."
    assert AgentReply.objects.filter(conversation_id=message.conversation_id).count() == 1
    assert outbound_count(message) == 1


def test_a_duplicate_respond_job_does_nothing_once_answered(help_desk):
    message = inbound(help_desk, "When are you open?")
    work_agents(lambda: AgentReply.objects.filter(in_reply_to=message).exists())

    duplicate = enqueue("agents.jobs.respond", message.conversation_id, message.pk, queue="ai")
    settle()

    duplicate.refresh()
    assert duplicate.return_value() == "already answered"
    assert outbound_count(message) == 1


def test_the_sweep_leaves_alone_what_respond_would_not_answer(help_desk):
    """A conversation a person took over, or that a person wrote to since, is not due."""
    taken = inbound(help_desk, "When are you open?", sender="4915100000001")
    services.handoff(conversation=taken.conversation)
    written = inbound(help_desk, "When are you open?", sender="4915100000002")
    assert client_for(help_desk).post("/api/v1/messages", {"to": "4915100000002", "text": {"body": "One moment."}},
                                      format="json").status_code == 202
    settle()
    get_redis().flushall()

    assert services.sweep_unanswered() == 0
    assert not AgentReply.objects.filter(in_reply_to__in=[taken, written]).exists()


def test_a_suspended_tenants_agents_stop_and_resume_on_reactivation(help_desk, settings):
    # given a suspended tenant whose contacts write to it: one now, one long ago
    settings.AGENTS_RESUME_MAX_AGE_SECONDS = 600
    set_tenant_status(tenant=help_desk, status="suspended")
    recent = inbound(help_desk, "When are you open?", sender="4915100000011")
    stale = inbound(help_desk, "When are you open?", sender="4915100000012")
    Message.objects.filter(pk=stale.pk).update(accepted_at=timezone.now() - timedelta(seconds=601))

    # when the reply jobs run, and the sweep too: nothing is answered, nothing is even routed
    settle()
    run_sweep()
    settle()
    assert AgentReply.objects.count() == 0
    assert Message.objects.filter(direction="out").count() == 0
    assert services.respond(conversation_id=recent.conversation_id, message_id=recent.pk) == "tenant suspended"

    # when it is reactivated, the next sweep answers what is still recent, and only that
    set_tenant_status(tenant=help_desk, status="active")
    run_sweep()
    reply = work_agents(lambda: AgentReply.objects.filter(in_reply_to=recent).first())
    settle()
    assert reply.message.text == "9 to 5, Monday to Friday."
    assert not AgentReply.objects.filter(in_reply_to=stale).exists()
    assert Message.objects.filter(direction="out").count() == 1
