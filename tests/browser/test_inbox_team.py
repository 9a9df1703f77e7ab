"""The inbox as a support team uses it: two members, each in a browser context of their own,
against one running platform (daphne for the module, workers per test) and a sandbox WhatsApp.

Everything one member does reaches the other over the WebSocket, without a reload.
"""

from __future__ import annotations

import re
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect

from agents.models import ConversationState
from messaging import services as messaging
from messaging.models import Conversation, Message, Note
from pooling import services as pooling
from pooling.models import WhatsAppSession
from tests.browser.conftest import ARTIFACTS
from tests.factories import MembershipFactory
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

TIMEOUT_MS = 30_000
PASSWORD = "pw-for-tests"
PHONE = {"width": 390, "height": 844}

# Notifications shown by the page, recorded where the test can read them (the real API needs a desktop).
RECORD_NOTIFICATIONS = """
window.__notifications = [];
const RealNotification = window.Notification;
class RecordingNotification extends RealNotification {
  constructor(title, options) { super(title, options); window.__notifications.push({title, body: (options || {}).body}); }
}
window.Notification = RecordingNotification;
"""


@pytest.fixture(autouse=True)
def _async_unsafe(monkeypatch):
    # The test thread reads the database while Playwright's event loop runs on it.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def team(shared_platform, spawn_sandbox):
    """Alice and Bob, members of one tenant whose WhatsApp (a sandbox worker) is working."""
    alice = MembershipFactory(user__first_name="Alice", user__username="alice")
    bob = MembershipFactory(tenant=alice.tenant, user__first_name="Bob", user__username="bob")
    sandbox = spawn_sandbox(capacity=3, auto_scan_seconds=0.3, ack_delay=0.2, echo_delay=0.3)
    pooling.register_static_slot(dialect="sandbox", base_url=sandbox.base_url, api_key=sandbox.api_key,
                                 tier=alice.tenant.tier, capacity=3)
    pooling.start_session(tenant=alice.tenant)
    wait_until(lambda: WhatsAppSession.objects.filter(tenant=alice.tenant, status="WORKING").exists(), timeout=30)

    class Team:
        url = shared_platform.url
        tenant = alice.tenant
        session = WhatsAppSession.objects.get(tenant=alice.tenant)

        def __init__(self):
            self.alice, self.bob, self.sandbox = alice, bob, sandbox

        def contact_writes(self, text: str, sender: str = "4915112345678", name: str = "Erika Mustermann"):
            answer = sandbox.control("POST", "/sandbox/inbound", json={
                "session": self.session.name, "from": sender, "text": text, "name": name})
            assert answer.status_code == 200, answer.text

    return Team()


@pytest.fixture
def open_page(chromium, request):
    """Opens a signed-in inbox page in a fresh browser context; screenshots any page on failure."""
    contexts, pages = [], []

    def open_(team, member, *, viewport=None, notifications=False):
        context = chromium.new_context(viewport=viewport or {"width": 1280, "height": 800})
        if notifications:
            context.grant_permissions(["notifications"], origin=team.url)
            context.add_init_script(RECORD_NOTIFICATIONS)
        contexts.append(context)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        page.goto(f"{team.url}/inbox/")
        page.fill("#id_username", member.user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=TIMEOUT_MS)
        pages.append(page)
        return page

    yield open_
    report = getattr(request.node, "report_call", None)
    for n, page in enumerate(pages):
        if report is not None and report.failed:
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{n}-failure.png"), full_page=True)
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def conversation_item(page, name: str):
    return page.locator(".conversation", has_text=name)


def test_alice_assigns_to_bob_who_finds_it_in_mine_is_notified_and_whose_presence_alice_sees(team, open_page):
    # given both signed in, each seeing the other online
    a = open_page(team, team.alice)
    b = open_page(team, team.bob, notifications=True)
    expect(a.locator('#team [data-user-id="%d"]' % team.bob.user_id)).to_have_attribute("data-presence", "online",
                                                                                          timeout=TIMEOUT_MS)
    expect(b.locator('#team [data-user-id="%d"]' % team.alice.user_id)).to_have_attribute("data-presence", "online")
    b.click("#notify")
    expect(b.locator("#notify")).to_have_text("Notifications on")

    # when a contact writes, and Alice assigns the conversation to Bob
    team.contact_writes("Hello, is my order on its way?")
    item = conversation_item(a, "Erika Mustermann")
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    item.click()
    a.select_option("#assignee", str(team.bob.user_id))

    # then Bob finds it under "Mine", with his initials on it, and Alice sees it as Bob's
    expect(item.locator(".assignee-chip")).to_have_text("B", timeout=TIMEOUT_MS)
    b.click('.view-tab[data-view="mine"]')
    mine = conversation_item(b, "Erika Mustermann")
    expect(mine).to_be_visible(timeout=TIMEOUT_MS)
    expect(mine.locator(".assignee-chip.me")).to_be_visible()
    assert Conversation.objects.get(tenant=team.tenant).assignee_id == team.bob.user_id
    a.click('.view-tab[data-view="unassigned"]')
    expect(conversation_item(a, "Erika Mustermann")).to_have_count(0, timeout=TIMEOUT_MS)
    shot(b, "team-1-bob-mine")

    # when the contact writes again, Bob (not looking at it) gets a notification
    team.contact_writes("I ordered on Monday.")
    wait_until(lambda: b.evaluate("window.__notifications.length") > 0, timeout=30)
    assert b.evaluate("window.__notifications")[0] == {"title": "Erika Mustermann", "body": "I ordered on Monday."}

    # when Bob goes away, Alice sees it; when he closes the inbox, she sees him offline
    b.click("#my-presence")
    expect(b.locator("#my-presence")).to_have_text("Away")
    bob_row = a.locator('#team [data-user-id="%d"]' % team.bob.user_id)
    expect(bob_row).to_have_attribute("data-presence", "away", timeout=TIMEOUT_MS)
    shot(a, "team-2-alice-sees-bob-away")
    b.context.close()
    expect(bob_row).to_have_attribute("data-presence", "offline", timeout=TIMEOUT_MS)
    assert a.errors == []


def test_a_note_bob_sees_and_the_contact_never_receives_then_a_canned_reply_and_search(team, open_page):
    # given a sandbox echo contact (it echoes whatever reaches it) and another contact
    echo_number = "15550001234"
    messaging.send_message(tenant=team.tenant, to=echo_number, type="text", text="Welcome!")
    wait_until(lambda: Message.objects.filter(contact__wa_id=echo_number, direction="in").exists(), timeout=30)
    team.contact_writes("Where is parcel 4711?", sender="4917600000001", name="Max Parcel")
    a = open_page(team, team.alice)
    b = open_page(team, team.bob)
    echo_item = conversation_item(a, "+" + echo_number)
    expect(echo_item.locator(".sandbox-badge")).to_be_visible(timeout=TIMEOUT_MS)
    echo_item.click()
    conversation_item(b, "+" + echo_number).click()
    expect(a.locator("#thread-sandbox")).to_be_visible()

    # when Alice writes a private note
    a.click("#mode-note")
    a.fill("#reply-text", "Careful: this customer asked for a refund twice.")
    a.click("#reply-send")

    # then Bob sees it in the thread, marked private
    note = b.locator(".note", has_text="asked for a refund twice")
    expect(note).to_be_visible(timeout=TIMEOUT_MS)
    expect(note.locator(".note-head")).to_have_text(re.compile("Private note · Alice"))
    shot(b, "team-3-bob-sees-the-note")

    # when Bob answers with a canned reply picked with "/"
    a.click("#canned-manage")
    a.fill("#canned-code", "thanks")
    a.fill("#canned-content", "Thank you for your patience!")
    a.click("#canned-form button[type=submit]")
    expect(a.locator("#canned-list")).to_contain_text("/thanks", timeout=TIMEOUT_MS)
    a.keyboard.press("Escape")
    b.click("#reply-text")
    b.keyboard.type("/th")
    expect(b.locator("#canned-menu .canned-item", has_text="/thanks")).to_be_visible(timeout=TIMEOUT_MS)
    shot(b, "team-4-canned-menu")
    b.keyboard.press("Enter")
    expect(b.locator("#reply-text")).to_have_value("Thank you for your patience!")
    b.keyboard.press("Enter")

    # then the reply reaches the contact (its echo comes back), and the note never did
    expect(b.locator(".message.in", has_text="Sandbox echo: Thank you for your patience!")).to_be_visible(
        timeout=TIMEOUT_MS)
    assert Note.objects.filter(body__contains="refund twice").count() == 1
    assert not Message.objects.filter(text__contains="refund twice").exists()

    # when Alice searches by message text and by name, only the matching conversation stays
    a.fill("#search", "parcel 4711")
    expect(a.locator(".conversation")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(conversation_item(a, "Max Parcel")).to_be_visible()
    a.fill("#search", "1555000")
    expect(a.locator(".conversation")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(conversation_item(a, "+" + echo_number)).to_be_visible()
    shot(a, "team-5-search")
    assert a.errors == [] and b.errors == []


def test_resolve_then_the_contact_writes_and_it_reopens_and_resume_bot_after_a_manual_reply(team, open_page):
    team.contact_writes("I need help")
    a = open_page(team, team.alice)
    item = conversation_item(a, "Erika Mustermann")
    item.click()

    # when Alice replies by hand, the bot is paused, and the header says until when
    a.fill("#reply-text", "Hi, Alice here.")
    a.keyboard.press("Enter")
    expect(a.locator("#bot-state")).to_have_text(re.compile(r"Bot paused until \d"), timeout=TIMEOUT_MS)
    shot(a, "team-6-bot-paused")

    # then one click resumes it
    a.click("#handback")
    expect(a.locator("#bot-state")).to_have_text("", timeout=TIMEOUT_MS)
    conversation = Conversation.objects.get(tenant=team.tenant)
    wait_until(lambda: ConversationState.objects.get(conversation=conversation).automation_paused_until is None)

    # when she resolves it, it leaves the open list
    a.click("#resolve")
    expect(a.locator("#status-banner")).to_have_text(re.compile("Resolved"), timeout=TIMEOUT_MS)
    a.click("#back") if a.locator("#back").is_visible() else None
    a.select_option("#status-filter", "resolved")
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    a.select_option("#status-filter", "open")
    expect(item).to_have_count(0, timeout=TIMEOUT_MS)

    # when the contact writes again, it is open again, live
    team.contact_writes("Sorry, one more question")
    expect(item).to_be_visible(timeout=TIMEOUT_MS)
    assert Conversation.objects.get(pk=conversation.pk).status == "open"
    item.click()
    a.click("#contact-toggle")
    expect(a.locator("#contact-history")).to_contain_text("Reopened: the contact wrote", timeout=TIMEOUT_MS)
    shot(a, "team-7-reopened-history")
    assert a.errors == []


def test_the_contact_panel_edits_name_labels_and_attributes(team, open_page):
    team.contact_writes("Hi", name="erika_87")
    a = open_page(team, team.alice)
    conversation_item(a, "erika_87").click()
    a.click("#contact-toggle")

    a.fill("#contact-name", "Erika Mustermann")
    a.click("#attribute-add")
    a.locator(".attribute-key").last.fill("plan")
    a.locator(".attribute-value").last.fill("gold")
    a.click("#contact-save")
    expect(a.locator("#contact-saved")).to_be_visible(timeout=TIMEOUT_MS)
    a.fill("#label-input", "VIP")
    a.click("#label-form button")

    expect(a.locator("#contact-labels .label-chip", has_text="vip")).to_be_visible(timeout=TIMEOUT_MS)
    expect(conversation_item(a, "Erika Mustermann").locator(".label-chip", has_text="vip")).to_be_visible()
    a.select_option("#label-filter", "vip")
    expect(a.locator(".conversation")).to_have_count(1, timeout=TIMEOUT_MS)
    shot(a, "team-8-contact-panel")
    contact = Conversation.objects.get(tenant=team.tenant).contact
    assert (contact.name, contact.attributes) == ("Erika Mustermann", {"plan": "gold"})
    assert a.errors == []


@contextmanager
def nothing_cut_off(page):
    yield
    overflow = page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        const cut = [];
        for (const node of document.querySelectorAll('body *')) {
            const box = node.getBoundingClientRect();
            const style = getComputedStyle(node);
            if (!box.width || style.visibility === 'hidden' || node.closest('[hidden], dialog:not([open]), .canned-menu')) continue;
            if (box.left < -1 || box.right > width + 1) cut.push((node.id || node.className || node.tagName) + ' ' + Math.round(box.left) + '..' + Math.round(box.right));
        }
        return {width, scroll: document.documentElement.scrollWidth, cut: cut.slice(0, 10)};
    }""")
    assert overflow["scroll"] <= overflow["width"] and overflow["cut"] == [], overflow


def test_on_a_phone_390_px_wide_nothing_is_cut_off(team, open_page):
    team.contact_writes("Hello from my phone, a long message that has to wrap properly on a narrow screen.")
    a = open_page(team, team.alice, viewport=PHONE)

    with nothing_cut_off(a):
        expect(conversation_item(a, "Erika Mustermann")).to_be_visible(timeout=TIMEOUT_MS)
    shot(a, "phone-1-list")

    conversation_item(a, "Erika Mustermann").click()
    with nothing_cut_off(a):
        expect(a.locator(".message.in")).to_be_visible(timeout=TIMEOUT_MS)
        expect(a.locator(".sidebar")).to_be_hidden()
        expect(a.locator("#reply-send")).to_be_in_viewport()
        expect(a.locator("#resolve")).to_be_in_viewport()
    shot(a, "phone-2-thread")

    a.click("#contact-toggle")
    with nothing_cut_off(a):
        expect(a.locator("#contact-panel")).to_be_visible()
        expect(a.locator("#contact-save")).to_be_in_viewport()
    shot(a, "phone-3-contact-panel")

    a.click("#contact-close")
    a.click("#back")
    expect(a.locator(".sidebar")).to_be_visible()
    assert a.errors == []
