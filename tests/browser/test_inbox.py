"""The live inbox in a real browser, against a running platform and a sandbox WhatsApp.

Nothing here reloads the page after the first load: what appears, appears
over the WebSocket.
"""

import re

import pytest
from playwright.sync_api import expect

from messaging import services as messaging
from messaging.models import Conversation, Message
from pooling import services as pooling
from pooling.models import WhatsAppSession
from tests.browser.conftest import screenshot
from tests.waiting import wait_until
from tests.factories import MembershipFactory

pytestmark = pytest.mark.integration

TIMEOUT_MS = 30_000
PASSWORD = "pw-for-tests"


def sign_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/inbox/")
    expect(page).to_have_url(re.compile(r"/inbox/login/"))
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/inbox/(\?.*)?$"))
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=TIMEOUT_MS)


@pytest.fixture
def member(running_platform, spawn_sandbox):
    """A tenant member; the tenant's tier pool is one sandbox worker with room, its session not started."""
    membership = MembershipFactory()
    # Acks 2 s apart: long enough to see each tick while it shows.
    sandbox = spawn_sandbox(capacity=3, auto_scan_seconds=3, ack_delay=2.0, echo_delay=0.2)
    pooling.register_static_slot(dialect="sandbox", base_url=sandbox.base_url, api_key=sandbox.api_key,
                                 tier=membership.tenant.tier, capacity=3)
    membership.sandbox = sandbox
    return membership


def test_a_member_starts_the_session_sees_a_message_arrive_replies_and_watches_the_ticks(
        page, running_platform, member):
    # given a member signed in to the inbox, the tenant's WhatsApp not started yet
    sign_in(page, running_platform.url, member.user.username)
    session_card = page.locator("#session")
    expect(session_card).to_have_attribute("data-status", "STOPPED", timeout=TIMEOUT_MS)

    # when they start the session, the QR code shows while it waits for the scan, then it works
    page.click("#session-toggle")
    expect(page.locator("#session-qr-img")).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#session-qr-img")).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    screenshot(page, "inbox-1-qr-code")
    expect(session_card).to_have_attribute("data-status", "WORKING", timeout=TIMEOUT_MS)
    expect(page.locator("#session-qr")).to_be_hidden()

    # when a contact writes to the tenant's number (through the sandbox WhatsApp)
    session = WhatsAppSession.objects.get(tenant=member.tenant)
    answer = member.sandbox.control("POST", "/sandbox/inbound", json={
        "session": session.name, "from": "4915112345678", "text": "Hello, is my order on its way?",
        "name": "Erika Mustermann"})
    assert answer.status_code == 200, answer.text

    # then the conversation appears, unread, without a reload
    item = page.locator(".conversation", has_text="Erika Mustermann")
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    expect(item.locator(".unread")).to_have_text("1")
    screenshot(page, "inbox-2-new-conversation")

    # when the member opens it, the message is there and the conversation is read
    item.click()
    expect(page.locator(".message.in")).to_have_text(re.compile("Hello, is my order on its way?"))
    expect(item.locator(".unread")).to_have_count(0, timeout=TIMEOUT_MS)
    conversation = Conversation.objects.get(tenant=member.tenant)
    wait_until(lambda: Conversation.objects.get(pk=conversation.pk).unread_count == 0, timeout=30)

    # when they reply, the ticks advance as WhatsApp acknowledges: sent, delivered, read
    page.fill("#reply-text", "Yes, it ships today.")
    page.keyboard.press("Enter")
    reply = page.locator(".message.out", has_text="Yes, it ships today.")
    expect(reply).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("#reply-text")).to_have_value("")
    expect(reply).to_have_attribute("data-status", "sent", timeout=TIMEOUT_MS)
    expect(reply.locator(".ticks")).to_have_text("✓")
    screenshot(page, "inbox-3-reply-sent")
    expect(reply).to_have_attribute("data-status", "delivered", timeout=TIMEOUT_MS)
    expect(reply.locator(".ticks")).to_have_text("✓✓")
    expect(reply).to_have_attribute("data-status", "read", timeout=TIMEOUT_MS)
    expect(reply.locator(".ticks.read")).to_have_text("✓✓")
    screenshot(page, "inbox-4-reply-read")
    assert Message.objects.get(conversation=conversation, direction="out").status == "read"

    # when they take the conversation over, then hand it back
    page.click("#takeover")
    expect(page.locator("#handback")).to_be_enabled(timeout=TIMEOUT_MS)
    expect(page.locator("#takeover")).to_be_disabled()
    expect(item.locator(".agent-chip.human")).to_be_visible()
    screenshot(page, "inbox-5-taken-over")
    page.click("#handback")
    expect(page.locator("#takeover")).to_be_enabled(timeout=TIMEOUT_MS)
    expect(item.locator(".agent-chip.human")).to_have_count(0)
    assert page.errors == []


def test_after_a_dropped_socket_the_page_reconnects_and_shows_what_it_missed(page, running_platform, member):
    # given a member watching an open conversation on a working session
    pooling.start_session(tenant=member.tenant)
    wait_until(lambda: WhatsAppSession.objects.filter(tenant=member.tenant, status="WORKING").exists(), timeout=30)
    accepted = messaging.send_message(tenant=member.tenant, to="4915187654321", type="text", text="Welcome!")
    sign_in(page, running_platform.url, member.user.username)
    page.locator(".conversation").first.click()
    expect(page.locator(".message.out", has_text="Welcome!")).to_be_visible(timeout=TIMEOUT_MS)

    # when the web process goes away, a message is sent meanwhile, and the web process comes back
    running_platform.stop_web()
    expect(page.locator("#connection")).to_have_attribute("data-state", re.compile("offline|connecting"),
                                                          timeout=TIMEOUT_MS)
    missed = messaging.send_message(tenant=member.tenant, to="4915187654321", type="text", text="Sent while away")
    wait_until(lambda: Message.objects.get(pk=missed.message.pk).status != "queued", timeout=30)
    screenshot(page, "inbox-6-disconnected")
    running_platform.start_web()

    # then the page reconnects by itself and fetches what it missed
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=60_000)
    expect(page.locator(".message.out", has_text="Sent while away")).to_be_visible(timeout=TIMEOUT_MS)
    assert accepted.message.conversation_id == missed.message.conversation_id
    screenshot(page, "inbox-7-reconnected")
    assert page.errors == []
