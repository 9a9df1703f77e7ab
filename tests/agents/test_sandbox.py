"""End to end through a real sandbox worker: the contact's message arrives as the sandbox's signed
webhook (relayed to the platform's hook view), the demo's knowledge-base agent answers on `ai`, and the answer goes back out
through the normal send flow to the contact (sent, then acked delivered by the sandbox)."""

import pytest
from django.core.management import call_command

from agents import demo
from agents.models import AgentReply, ConversationState
from messaging.models import Message
from tests.agents.conftest import WITH_SENDS, settle, work_agents

pytestmark = pytest.mark.integration

CONTACT = "4915112345678"


def say(platform, text):
    call_command("simulate_inbound", platform.tenant.slug, "--from", CONTACT, "--text", text, "--name", "Ann")


def delivered_reply(to_text):
    def check():
        inbound = Message.objects.filter(direction="in", text=to_text).first()
        reply = inbound and AgentReply.objects.filter(in_reply_to=inbound).select_related("message").first()
        return reply if reply and reply.message.status in ("delivered", "read") else None
    return check


def test_the_demo_knowledge_base_answers_the_contact(platform):
    demo.seed(tenants=[platform.tenant])

    say(platform, "What time do you open on Saturday?")

    reply = work_agents(delivered_reply("What time do you open on Saturday?"), WITH_SENDS, timeout=30)
    assert reply.message.text.endswith("We're open Monday to Friday 9:00-18:00 and Saturday 10:00-14:00.")
    assert reply.message.text.startswith(f"Hi! This is the {platform.tenant.name} assistant")
    assert reply.message.provider_message_id and reply.message.contact.wa_id == CONTACT


def test_three_quick_messages_through_the_sandbox_get_one_reply(platform):
    demo.seed(tenants=[platform.tenant])

    for text in ("hello", "I ordered yesterday", "how do I track my order?"):
        say(platform, text)

    work_agents(delivered_reply("how do I track my order?"), WITH_SENDS, timeout=30)
    settle(WITH_SENDS)
    assert AgentReply.objects.count() == 1
    assert Message.objects.filter(direction="out").count() == 1


def test_the_agent_keyword_hands_off_and_resume_gives_it_back(platform):
    demo.seed(tenants=[platform.tenant])

    # "agent" → the human agent: one greeting that says so, then silence from automation
    say(platform, "I need an agent please")
    greeting = work_agents(delivered_reply("I need an agent please"), WITH_SENDS, timeout=30)
    say(platform, "hello? what are your opening hours?")
    settle(WITH_SENDS)
    conversation_id = greeting.conversation_id
    assert (greeting.source, ConversationState.objects.get(conversation_id=conversation_id).owner) == \
        ("greeting", "human")
    assert AgentReply.objects.count() == 1

    # resume: the knowledge base answers the next question
    assert platform.api.post(f"/api/v1/conversations/{conversation_id}/resume").status_code == 200
    say(platform, "what are your opening hours?")
    answer = work_agents(delivered_reply("what are your opening hours?"), WITH_SENDS, timeout=30)
    assert answer.source == "knowledge_base" and "Saturday 10:00-14:00" in answer.message.text
