"""The support team's API: assignment, status, labels, notes, canned replies, contacts, search,
and that none of it crosses tenants."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from messaging import presence, services, webhooks_out
from messaging.models import Conversation, Note, WebhookDelivery
from pooling.bridges.base import BridgeEvent
from pooling.bridges.sandbox.state import ECHO_PREFIX
from messaging.models import SANDBOX_ECHO_PREFIX
from tests.conftest import client_for
from tests.factories import MembershipFactory, TenantFactory


def member_client(membership) -> APIClient:
    client = APIClient()
    client.force_login(membership.user)
    client.credentials(HTTP_X_TENANT=membership.tenant.slug)
    return client


@pytest.fixture
def alice(db):
    return MembershipFactory(user__first_name="Alice")


@pytest.fixture
def bob(alice):
    return MembershipFactory(tenant=alice.tenant)


def inbound(tenant, sender="4915112345678", text="hello", name="Erika", provider_id=None) -> Conversation:
    event = BridgeEvent(kind="message", session="s", provider_message_id=provider_id or f"in-{sender}-{text}",
                        chat_id=sender, contact_name=name, text=text, message_type="text")
    result = services.ingest_events(routed=[(tenant.pk, event)])
    assert result.received, "not stored"
    return Conversation.objects.get(tenant=tenant, contact__wa_id=sender)


def ids(answer) -> list[int]:
    assert answer.status_code == 200, answer.content
    return [row["id"] for row in answer.json()["results"]]


# --- assignment and views --------------------------------------------------------------------


def test_a_member_assigns_to_another_who_then_finds_it_in_mine(alice, bob):
    conversation = inbound(alice.tenant)
    a, b = member_client(alice), member_client(bob)
    assert ids(a.get("/api/v1/conversations?view=unassigned")) == [conversation.pk]

    answer = a.post(f"/api/v1/conversations/{conversation.pk}/assign", {"assignee": bob.user_id}, format="json")

    assert answer.status_code == 200, answer.content
    assert answer.json()["assignee"]["id"] == bob.user_id
    assert ids(b.get("/api/v1/conversations?view=mine")) == [conversation.pk]
    assert ids(a.get("/api/v1/conversations?view=mine")) == []
    assert ids(a.get("/api/v1/conversations?view=unassigned")) == []
    history = a.get(f"/api/v1/conversations/{conversation.pk}/activity").json()
    assert [(h["kind"], h["actor"]["id"]) for h in history] == [("assigned", alice.user_id)]


def test_reassigning_and_unassigning(alice, bob):
    conversation = inbound(alice.tenant)
    a = member_client(alice)
    a.post(f"/api/v1/conversations/{conversation.pk}/assign", {"assignee": bob.user_id}, format="json")
    a.post(f"/api/v1/conversations/{conversation.pk}/assign", {"assignee": alice.user_id}, format="json")
    assert Conversation.objects.get(pk=conversation.pk).assignee_id == alice.user_id
    a.post(f"/api/v1/conversations/{conversation.pk}/assign", {"assignee": None}, format="json")
    assert Conversation.objects.get(pk=conversation.pk).assignee_id is None


def test_only_members_of_the_tenant_can_be_assigned(alice):
    stranger = MembershipFactory()
    conversation = inbound(alice.tenant)

    answer = member_client(alice).post(f"/api/v1/conversations/{conversation.pk}/assign",
                                       {"assignee": stranger.user_id}, format="json")

    assert answer.status_code == 400
    assert answer.json()["code"] == "invalid" and "GET /api/v1/members" in answer.json()["detail"]


def test_mine_needs_a_person_and_an_api_key_filters_by_assignee(alice, bob):
    conversation = inbound(alice.tenant)
    services.assign_conversation(conversation=conversation, assignee_id=bob.user_id)
    api = client_for(alice.tenant)

    refused = api.get("/api/v1/conversations?view=mine")
    assert refused.status_code == 400 and "assignee=" in refused.json()["detail"]
    assert ids(api.get(f"/api/v1/conversations?assignee={bob.user_id}")) == [conversation.pk]


def test_members_list_presence(alice, bob):
    presence.socket_alive(tenant_id=alice.tenant_id, user_id=bob.user_id, socket="s1", lease_seconds=30)
    presence.set_away(tenant_id=alice.tenant_id, user_id=alice.user_id, away=True)

    members = {m["id"]: m["presence"] for m in member_client(alice).get("/api/v1/members").json()}

    # alice chose away but has no socket open: offline wins
    assert members == {alice.user_id: "offline", bob.user_id: "online"}
    presence.socket_alive(tenant_id=alice.tenant_id, user_id=alice.user_id, socket="s2", lease_seconds=30)
    assert presence.presence_of(tenant_id=alice.tenant_id) == {alice.user_id: "away", bob.user_id: "online"}
    presence.socket_closed(tenant_id=alice.tenant_id, user_id=bob.user_id, socket="s1")
    assert presence.status_of(tenant_id=alice.tenant_id, user_id=bob.user_id) == "offline"


def test_auto_assign_is_off_by_default_and_round_robins_among_online_members(alice, bob):
    away = MembershipFactory(tenant=alice.tenant)
    for m in (alice, bob, away):
        presence.socket_alive(tenant_id=alice.tenant_id, user_id=m.user_id, socket=f"s{m.pk}", lease_seconds=30)
    presence.set_away(tenant_id=alice.tenant_id, user_id=away.user_id, away=True)
    first = inbound(alice.tenant, sender="4915100000001")
    assert services.auto_assign(conversation_id=first.pk) is None

    answer = member_client(alice).patch("/api/v1/inbox/settings", {"auto_assign": True}, format="json")
    assert answer.json() == {"auto_assign": True}
    chosen = [services.auto_assign(conversation_id=inbound(alice.tenant, sender=f"49151000000{n}").pk)
              for n in range(2, 6)]

    assert chosen == [alice.user_id, bob.user_id, alice.user_id, bob.user_id]
    assert services.auto_assign(conversation_id=first.pk) == alice.user_id
    assert services.auto_assign(conversation_id=first.pk) is None  # assigned already


# --- resolve, reopen, snooze -------------------------------------------------------------------


def test_resolve_then_the_contact_writes_and_it_reopens(alice):
    conversation = inbound(alice.tenant)
    a = member_client(alice)
    assert a.post(f"/api/v1/conversations/{conversation.pk}/resolve").json()["status"] == "resolved"
    assert ids(a.get("/api/v1/conversations?status=open")) == []
    assert ids(a.get("/api/v1/conversations?status=resolved")) == [conversation.pk]

    inbound(alice.tenant, text="one more thing")

    assert Conversation.objects.get(pk=conversation.pk).status == "open"
    kinds = [(h["kind"], h["data"].get("reason")) for h in a.get(f"/api/v1/conversations/{conversation.pk}/activity").json()]
    assert kinds == [("reopened", "inbound"), ("resolved", None)]


def test_snooze_needs_a_future_time_and_ends_by_itself(alice):
    conversation = inbound(alice.tenant)
    a = member_client(alice)
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    refused = a.post(f"/api/v1/conversations/{conversation.pk}/snooze", {"until": past}, format="json")
    assert refused.status_code == 400 and "future" in refused.json()["detail"]

    until = timezone.now() + timedelta(hours=1)
    answer = a.post(f"/api/v1/conversations/{conversation.pk}/snooze", {"until": until.isoformat()}, format="json")
    assert answer.json()["status"] == "snoozed"

    assert services.wake_snoozed(now=until - timedelta(seconds=1)) == 0
    assert services.wake_snoozed(now=until + timedelta(seconds=1)) == 1
    assert Conversation.objects.get(pk=conversation.pk).status == "open"


def test_a_snoozed_conversation_reopens_when_the_contact_writes(alice):
    conversation = inbound(alice.tenant)
    services.snooze_conversation(conversation=conversation, until=timezone.now() + timedelta(days=1))
    inbound(alice.tenant, text="are you there?")
    reopened = Conversation.objects.get(pk=conversation.pk)
    assert (reopened.status, reopened.snoozed_until) == ("open", None)


def test_reopen_by_hand(alice):
    conversation = inbound(alice.tenant)
    services.resolve_conversation(conversation=conversation)
    answer = member_client(alice).post(f"/api/v1/conversations/{conversation.pk}/reopen")
    assert answer.json()["status"] == "open"


# --- labels -----------------------------------------------------------------------------------


def test_labels_are_set_created_and_filtered_on(alice):
    vip = inbound(alice.tenant, sender="4915100000001")
    other = inbound(alice.tenant, sender="4915100000002")
    a = member_client(alice)

    answer = a.put(f"/api/v1/conversations/{vip.pk}/labels", {"labels": ["VIP", "billing"]}, format="json")

    assert answer.json()["labels"] == ["billing", "vip"]
    assert sorted(label["name"] for label in a.get("/api/v1/labels").json()) == ["billing", "vip"]
    assert ids(a.get("/api/v1/conversations?label=vip")) == [vip.pk]
    a.put(f"/api/v1/conversations/{vip.pk}/labels", {"labels": ["billing"]}, format="json")
    assert ids(a.get("/api/v1/conversations?label=vip")) == []
    assert other.pk not in ids(a.get("/api/v1/conversations?label=billing"))
    bad = a.put(f"/api/v1/conversations/{vip.pk}/labels", {"labels": ["<script>"]}, format="json")
    assert bad.status_code == 400 and "label name" in bad.json()["detail"]


def test_label_crud_refuses_a_duplicate(alice):
    a = member_client(alice)
    created = a.post("/api/v1/labels", {"name": "urgent", "color": "#e03131"}, format="json")
    assert created.status_code == 201
    again = a.post("/api/v1/labels", {"name": "Urgent"}, format="json")
    assert again.status_code == 400 and "exists already" in again.json()["detail"]
    assert a.delete(f"/api/v1/labels/{created.json()['id']}").status_code == 204


# --- notes --------------------------------------------------------------------------------------


def test_a_note_is_for_members_and_its_body_never_reaches_webhooks(
        alice, bob, http_receiver, settings, django_capture_on_commit_callbacks):
    settings.EGRESS_ALLOW_PRIVATE_URLS = True
    receiver = http_receiver()
    webhooks_out.create_endpoint(tenant=alice.tenant, url=receiver.url, event_types=["*"])
    conversation = inbound(alice.tenant)

    with django_capture_on_commit_callbacks(execute=True):
        answer = member_client(alice).post(f"/api/v1/conversations/{conversation.pk}/notes",
                                           {"body": "Customer is angry, refund approved"}, format="json")

    assert answer.status_code == 201, answer.content
    seen_by_bob = member_client(bob).get(f"/api/v1/conversations/{conversation.pk}/notes").json()
    assert [(n["body"], n["author"]["id"]) for n in seen_by_bob] == [("Customer is angry, refund approved",
                                                                       alice.user_id)]
    delivery = WebhookDelivery.objects.get(event_type="note.created")
    assert delivery.payload["data"]["id"] == answer.json()["id"]
    assert "refund" not in str(delivery.payload)
    assert not conversation.messages.filter(text__contains="refund").exists()


def test_api_keys_cannot_read_or_write_notes(alice):
    conversation = inbound(alice.tenant)
    services.create_note(conversation=conversation, author=alice.user, body="internal")
    api = client_for(alice.tenant)
    for answer in (api.get(f"/api/v1/conversations/{conversation.pk}/notes"),
                   api.post(f"/api/v1/conversations/{conversation.pk}/notes", {"body": "x"}, format="json")):
        assert answer.status_code == 403 and answer.json()["code"] == "members_only"
    assert Note.objects.count() == 1


# --- canned replies -------------------------------------------------------------------------------


def test_canned_replies_crud(alice):
    a = member_client(alice)
    created = a.post("/api/v1/canned-replies", {"short_code": "/Thanks", "content": "Thank you for writing!"},
                     format="json")
    assert created.status_code == 201 and created.json()["short_code"] == "thanks"
    duplicate = a.post("/api/v1/canned-replies", {"short_code": "thanks", "content": "again"}, format="json")
    assert duplicate.status_code == 400 and "exists already" in duplicate.json()["detail"]
    bad = a.post("/api/v1/canned-replies", {"short_code": "two words", "content": "x"}, format="json")
    assert bad.status_code == 400 and "/thanks" in bad.json()["detail"]
    reply_id = created.json()["id"]
    assert a.patch(f"/api/v1/canned-replies/{reply_id}", {"content": "Thanks!"}, format="json").json()["content"] \
        == "Thanks!"
    assert [r["short_code"] for r in a.get("/api/v1/canned-replies").json()] == ["thanks"]
    assert a.delete(f"/api/v1/canned-replies/{reply_id}").status_code == 204


# --- contacts, search, sandbox ---------------------------------------------------------------------


def test_a_contact_name_and_attributes_set_by_a_member_stick(alice):
    conversation = inbound(alice.tenant, name="erika_1987")
    a = member_client(alice)
    answer = a.patch(f"/api/v1/contacts/{conversation.contact_id}",
                     {"name": "Erika Mustermann", "attributes": {"plan": "gold", "orders": 3}}, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["attributes"] == {"plan": "gold", "orders": 3}

    inbound(alice.tenant, name="erika_1987", text="again")

    assert a.get(f"/api/v1/contacts/{conversation.contact_id}").json()["name"] == "Erika Mustermann"
    nested = a.patch(f"/api/v1/contacts/{conversation.contact_id}", {"attributes": {"x": {"y": 1}}}, format="json")
    assert nested.status_code == 400 and "attributes" in nested.json()["detail"]


def test_search_finds_contacts_by_name_and_number_and_conversations_by_message_text(alice):
    erika = inbound(alice.tenant, sender="4915111111111", name="Erika", text="where is parcel 77?")
    max_ = inbound(alice.tenant, sender="4917622222222", name="Max", text="invoice please")
    a = member_client(alice)

    assert ids(a.get("/api/v1/conversations?search=erik")) == [erika.pk]
    assert ids(a.get("/api/v1/conversations?search=+49176")) == [max_.pk]
    assert ids(a.get("/api/v1/conversations?search=PARCEL")) == [erika.pk]
    assert ids(a.get("/api/v1/conversations?search=nothing-like-it")) == []
    assert [c["id"] for c in a.get("/api/v1/contacts?search=max").json()["results"]] == [max_.contact_id]
    assert a.get("/api/v1/conversations?search=x").status_code == 400


def test_sandbox_echo_contacts_are_marked_and_the_prefix_matches_the_sandbox():
    assert SANDBOX_ECHO_PREFIX == ECHO_PREFIX


def test_sandbox_contacts_carry_the_badge_flag(alice):
    echo = inbound(alice.tenant, sender="15550001234", name="")
    real = inbound(alice.tenant, sender="4915111111111")
    rows = {r["id"]: r["contact"]["sandbox"] for r in member_client(alice).get("/api/v1/conversations").json()["results"]}
    assert rows == {echo.pk: True, real.pk: False}


# --- tenant scoping -----------------------------------------------------------------------------------


def test_no_team_endpoint_reaches_another_tenant(alice):
    mine = inbound(alice.tenant)
    other = MembershipFactory(tenant=TenantFactory())
    theirs = inbound(other.tenant)
    services.create_note(conversation=theirs, author=other.user, body="secret")
    label = services.create_label(tenant=other.tenant, name="theirs")
    reply = services.create_canned_reply(tenant=other.tenant, short_code="theirs", content="x")
    a = member_client(alice)

    for method, path, body in [
        ("post", f"/api/v1/conversations/{theirs.pk}/assign", {"assignee": alice.user_id}),
        ("post", f"/api/v1/conversations/{theirs.pk}/resolve", None),
        ("post", f"/api/v1/conversations/{theirs.pk}/snooze", {"until": "2100-01-01T00:00:00Z"}),
        ("put", f"/api/v1/conversations/{theirs.pk}/labels", {"labels": ["x"]}),
        ("get", f"/api/v1/conversations/{theirs.pk}/notes", None),
        ("post", f"/api/v1/conversations/{theirs.pk}/notes", {"body": "hi"}),
        ("get", f"/api/v1/conversations/{theirs.pk}/activity", None),
        ("get", f"/api/v1/contacts/{theirs.contact_id}", None),
        ("patch", f"/api/v1/contacts/{theirs.contact_id}", {"name": "x"}),
        ("delete", f"/api/v1/labels/{label.pk}", None),
        ("delete", f"/api/v1/canned-replies/{reply.pk}", None),
        ("delete", f"/api/v1/notes/{Note.objects.get().pk}", None),
    ]:
        answer = getattr(a, method)(path, body, format="json")
        assert answer.status_code == 404, (method, path, answer.status_code)
    assert ids(a.get("/api/v1/conversations?search=erika")) == [mine.pk]
    assert a.get("/api/v1/labels").json() == [] and a.get("/api/v1/canned-replies").json() == []
    assert {m["id"] for m in a.get("/api/v1/members").json()} == {alice.user_id}
    assert Conversation.objects.get(pk=theirs.pk).status == "open"


@pytest.mark.integration
def test_the_sandbox_echo_does_not_rename_the_contact_written_to(platform):
    from tests.messaging.conftest import work_until

    # given a message to a sandbox echo number, whose contact has no name
    accepted = services.send_message(tenant=platform.tenant, to="15550009876", type="text", text="ping")
    contact = accepted.message.contact

    # when the sandbox echoes the message back
    echo = work_until(lambda: contact.messages.filter(direction="in").first())

    # then the contact keeps its name, and its conversation says it is a sandbox number
    assert echo.text == "Sandbox echo: ping"
    contact.refresh_from_db()
    assert (contact.name, contact.is_sandbox) == ("", True)
    row = platform.api.get("/api/v1/conversations").json()["results"][0]
    assert row["contact"] == {"id": contact.pk, "wa_id": "15550009876", "name": "", "sandbox": True}


@pytest.mark.integration
def test_a_message_through_the_bridge_reopens_and_auto_assigns_to_the_online_member(platform):
    from django.core.management import call_command

    from tests.messaging.conftest import work_until

    # given a tenant that auto-assigns, with one member online and one offline
    online, _offline = MembershipFactory(tenant=platform.tenant), MembershipFactory(tenant=platform.tenant)
    services.update_inbox_settings(tenant=platform.tenant, auto_assign=True)
    presence.socket_alive(tenant_id=platform.tenant.pk, user_id=online.user_id, socket="tab", lease_seconds=60)

    # when a contact writes through the sandbox bridge (signed webhook, intake)
    call_command("simulate_inbound", platform.tenant.slug, "--from", "4915112345678", "--text", "Hallo")

    # then the new conversation is the online member's
    conversation = work_until(lambda: Conversation.objects.filter(tenant=platform.tenant, assignee__isnull=False)
                              .first())
    assert conversation.assignee_id == online.user_id

    # and once resolved and unassigned, the contact's next message reopens it and assigns it again
    services.resolve_conversation(conversation=conversation)
    services.assign_conversation(conversation=conversation, assignee_id=None)
    call_command("simulate_inbound", platform.tenant.slug, "--from", "4915112345678", "--text", "Noch da?")
    work_until(lambda: Conversation.objects.filter(pk=conversation.pk, status="open",
                                                   assignee_id=online.user_id).exists())
