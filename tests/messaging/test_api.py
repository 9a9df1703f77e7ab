"""The messages/conversations/webhooks API: validation, idempotency, and tenant isolation."""

import pytest

from messaging import services, webhooks_out
from messaging.models import Conversation, Message
from pooling import services as pooling
from tenants.services import set_tenant_status
from tests.conftest import client_for
from tests.factories import MessageFactory, TenantFactory

pytestmark = pytest.mark.django_db

TEXT = {"to": "16505551234", "type": "text", "text": {"body": "Hello"}}


def test_a_send_is_accepted_queued(api):
    response = api.post("/api/v1/messages", TEXT, format="json")

    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["direction"], body["text"], body["contact"]["wa_id"]) == \
        ("queued", "out", "Hello", "16505551234")


def test_the_same_idempotency_key_and_body_returns_the_first_message(api):
    first = api.post("/api/v1/messages", TEXT, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    again = api.post("/api/v1/messages", TEXT, format="json", HTTP_IDEMPOTENCY_KEY="order-42")

    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Message.objects.count() == 1


def test_the_same_idempotency_key_with_another_body_is_409(api):
    api.post("/api/v1/messages", TEXT, format="json", HTTP_IDEMPOTENCY_KEY="order-42")
    other = api.post("/api/v1/messages", {**TEXT, "text": {"body": "Bye"}}, format="json",
                     HTTP_IDEMPOTENCY_KEY="order-42")

    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_conflict"
    assert Message.objects.count() == 1


def test_idempotency_keys_are_per_tenant(api, db):
    other = TenantFactory()
    pooling.start_session(tenant=other)

    mine = api.post("/api/v1/messages", TEXT, format="json", HTTP_IDEMPOTENCY_KEY="k")
    theirs = client_for(other).post("/api/v1/messages", TEXT, format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert (mine.status_code, theirs.status_code) == (202, 202)
    assert mine.json()["id"] != theirs.json()["id"]


@pytest.mark.parametrize(("body", "field", "words"), [
    ({**TEXT, "to": "12"}, "to", "E.164"),
    ({**TEXT, "to": "call me maybe"}, "to", "E.164"),
    ({**TEXT, "text": {"body": ""}}, "text", "empty"),
    ({**TEXT, "text": {"body": "   "}}, "text", "empty"),
    ({**TEXT, "text": {"body": "x" * 4097}}, "text", "4096"),
    ({**TEXT, "type": "sticker"}, "type", "Unsupported message type"),
    ({"to": "16505551234", "type": "image", "image": {"url": "ftp://example.com/a.png"}}, "image", "http(s)"),
    ({"to": "16505551234", "type": "image", "image": {"url": "javascript:alert(1)"}}, "image", "http(s)"),
    ({"to": "16505551234", "type": "image"}, "image", "needs"),
    ({"to": "16505551234", "type": "location", "location": {"latitude": 200, "longitude": 0}}, "location", ""),
])
def test_bad_input_is_400_with_a_clear_error(api, body, field, words):
    response = api.post("/api/v1/messages", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert field in response.json()["errors"]
    assert words in str(response.json())
    assert not Message.objects.exists()


def test_4096_characters_are_fine(api):
    assert api.post("/api/v1/messages", {**TEXT, "text": {"body": "x" * 4096}}, format="json").status_code == 202


def test_other_types_are_accepted(api, sending_tenant):
    # the messages reacted to and quoted exist (a reference to nothing is refused)
    for provider_id in ("wamid.X", "wamid.Y"):
        MessageFactory(conversation__contact__tenant=sending_tenant, provider_message_id=provider_id)
    bodies = [
        {"to": "16505551234", "type": "image", "image": {"url": "https://example.com/a.png", "caption": "A"}},
        {"to": "16505551234", "type": "document", "document": {"link": "https://example.com/a.pdf",
                                                               "filename": "a.pdf"}},
        {"to": "16505551234", "type": "location", "location": {"latitude": 52.5, "longitude": 13.4, "name": "B"}},
        {"to": "16505551234", "type": "reaction", "reaction": {"message_id": "wamid.X", "emoji": "👍"}},
        {"to": "16505551234@c.us", "type": "text", "text": {"body": "Hi"}, "reply_to": "wamid.Y"},
    ]
    answers = [api.post("/api/v1/messages", body, format="json") for body in bodies]

    assert [a.status_code for a in answers] == [202] * 5
    assert answers[0].json()["payload"]["url"] == "https://example.com/a.png"
    assert answers[4].json()["reply_to"] == "wamid.Y"


def test_templates_need_a_cloud_api_number(api):
    body = {"to": "16505551234", "type": "template", "template": {"name": "hello", "language": {"code": "en_US"}}}
    response = api.post("/api/v1/messages", body, format="json")
    assert response.status_code == 400 and "Cloud API" in response.json()["detail"]


def test_no_whatsapp_session_is_409_with_what_to_do(db):
    response = client_for(TenantFactory()).post("/api/v1/messages", TEXT, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "no_session"
    assert "POST /api/v1/session/start" in response.json()["detail"]


def test_a_suspended_tenant_cannot_send(api, sending_tenant):
    set_tenant_status(tenant=sending_tenant, status="suspended")

    response = api.post("/api/v1/messages", TEXT, format="json")

    assert response.status_code == 403 and response.json()["code"] == "tenant_suspended"


def test_list_filters(api, sending_tenant):
    api.post("/api/v1/messages", TEXT, format="json")
    api.post("/api/v1/messages", {**TEXT, "to": "4915112345678"}, format="json")

    by_contact = api.get("/api/v1/messages", {"contact": "4915112345678"}).json()["results"]
    queued = api.get("/api/v1/messages", {"status": "queued", "direction": "out"}).json()["results"]
    sent = api.get("/api/v1/messages", {"status": "sent"}).json()["results"]
    future = api.get("/api/v1/messages", {"since": "2999-01-01T00:00:00Z"}).json()["results"]

    assert [m["contact"]["wa_id"] for m in by_contact] == ["4915112345678"]
    assert len(queued) == 2 and sent == [] and future == []
    assert api.get("/api/v1/messages", {"since": "yesterday"}).status_code == 400


def test_pages_are_cursor_paginated(api):
    for n in range(5):
        api.post("/api/v1/messages", {**TEXT, "text": {"body": f"m{n}"}}, format="json")

    first = api.get("/api/v1/messages", {"page_size": 2}).json()
    second = api.get(first["next"])

    assert [m["text"] for m in first["results"]] == ["m4", "m3"]
    assert [m["text"] for m in second.json()["results"]] == ["m2", "m1"]


def test_webhook_secret_is_shown_once_and_can_be_given(api):
    generated = api.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook"}, format="json")
    chosen = api.post("/api/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "secret": "s" * 32,
                                           "event_types": ["message.received"]}, format="json")

    assert generated.status_code == 201 and generated.json()["secret"].startswith("whsec_")
    assert generated.json()["event_types"] == ["*"]
    assert chosen.json()["secret"] == "s" * 32
    assert "secret" not in api.get(f"/api/v1/webhooks/{generated.json()['id']}").json()
    assert api.post("/api/v1/webhooks", {"url": "ftp://x"}, format="json").status_code == 400
    assert api.post("/api/v1/webhooks", {"url": "http://x.example", "event_types": ["bad type"]},
                    format="json").status_code == 400


def test_private_webhook_hosts_are_refused_in_production(api, settings):
    settings.EGRESS_ALLOW_PRIVATE_URLS = False
    response = api.post("/api/v1/webhooks", {"url": "http://127.0.0.1:8000/steal"}, format="json")
    assert response.status_code == 400 and "private" in response.json()["detail"]


def test_a_send_into_a_held_conversation_refuses_another_tenants_or_contacts_conversation(sending_tenant):
    # Agents hand send_message the conversation they answer in (no look-up): one that is not
    # the tenant's, or not with `to`, must never carry the message.
    mine = services.send_message(tenant=sending_tenant, to="16505551234", type="text", text="first").message
    conversation = Conversation.objects.select_related("contact").get(pk=mine.conversation_id)
    stranger = TenantFactory()
    pooling.start_session(tenant=stranger)

    with pytest.raises(ValueError):
        services.send_message(tenant=stranger, to="16505551234", type="text", text="x", conversation=conversation)
    with pytest.raises(ValueError):
        services.send_message(tenant=sending_tenant, to="16505550000", type="text", text="x",
                              conversation=conversation)
    again = services.send_message(tenant=sending_tenant, to="16505551234", type="text", text="second",
                                  conversation=conversation).message

    assert again.conversation_id == conversation.pk and again.contact_id == conversation.contact_id
    assert Message.objects.filter(tenant=stranger).count() == 0
    assert Message.objects.filter(tenant=sending_tenant).count() == 2


def test_every_endpoint_answers_404_to_another_tenants_key(api, sending_tenant):
    # given one of each object, owned by the sending tenant
    message = services.send_message(tenant=sending_tenant, to="16505551234", type="text", text="mine").message
    endpoint = webhooks_out.create_endpoint(tenant=sending_tenant, url="http://127.0.0.1:9/hook")
    webhooks_out.fan_out_event({"id": "e1", "type": "message.queued", "tenant": sending_tenant.pk,
                                "data": {"conversation_id": message.conversation_id}})
    delivery = endpoint.deliveries.get()
    intruder = client_for(TenantFactory())

    # when another tenant's key asks for each of them
    answers = {
        "GET message": intruder.get(f"/api/v1/messages/{message.pk}"),
        "GET conversation": intruder.get(f"/api/v1/conversations/{message.conversation_id}"),
        "GET conversation messages": intruder.get(f"/api/v1/conversations/{message.conversation_id}/messages"),
        "GET webhook": intruder.get(f"/api/v1/webhooks/{endpoint.pk}"),
        "PATCH webhook": intruder.patch(f"/api/v1/webhooks/{endpoint.pk}", {"active": False}, format="json"),
        "PUT webhook": intruder.put(f"/api/v1/webhooks/{endpoint.pk}", {"url": "http://x.example"}, format="json"),
        "DELETE webhook": intruder.delete(f"/api/v1/webhooks/{endpoint.pk}"),
        "GET webhook deliveries": intruder.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries"),
        "GET delivery": intruder.get(f"/api/v1/webhooks/deliveries/{delivery.pk}"),
        "POST delivery replay": intruder.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/replay"),
    }
    lists = [intruder.get("/api/v1/messages").json()["results"],
             intruder.get("/api/v1/conversations").json()["results"],
             intruder.get("/api/v1/webhooks").json()]

    # then every one is 404, and the lists show nothing of the owner's
    assert {name: r.status_code for name, r in answers.items()} == {name: 404 for name in answers}
    assert all("mine" not in str(r.content) for r in answers.values())
    assert lists == [[], [], []]
    endpoint.refresh_from_db()
    assert endpoint.active
    # and the owner still sees all of it
    owner = client_for(sending_tenant)
    assert owner.get(f"/api/v1/messages/{message.pk}").status_code == 200
    assert owner.get(f"/api/v1/webhooks/{endpoint.pk}/deliveries").json()["results"][0]["id"] == delivery.pk
    assert owner.post(f"/api/v1/webhooks/deliveries/{delivery.pk}/replay").status_code == 202
