"""Outbound end to end: API → queue → worker → sandbox bridge → signed acks → events and webhooks."""

import json

import pytest
from django.core.management import call_command

from messaging.models import Message, WebhookDelivery
from messaging.webhooks_out import sign
from tests.messaging.conftest import work_until

pytestmark = pytest.mark.integration


def test_send_goes_sent_delivered_read_with_events_on_the_group_and_signed_webhooks(
    platform, webhook_receiver, group_listener, hook_relay
):
    # given a webhook endpoint for every event, and a live-inbox listener
    created = platform.api.post("/api/v1/webhooks", {"url": webhook_receiver.url, "event_types": ["*"]},
                                format="json")
    assert created.status_code == 201
    secret = created.json()["secret"]
    listener = group_listener(platform.tenant.pk)

    # when a text is sent
    response = platform.api.post("/api/v1/messages", {"to": "+1 650 555 1234", "type": "text",
                                                      "text": {"body": "Hello"}}, format="json")

    # then it is accepted queued, and walks up to read
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    message_id = response.json()["id"]
    work_until(lambda: Message.objects.get(pk=message_id).status == "read")
    message = Message.objects.get(pk=message_id)
    assert message.provider_message_id.startswith("true_16505551234@c.us_")
    assert message.sent_at and message.delivered_at and message.read_at
    assert message.attempts == 1
    assert set(hook_relay.answers) == {200}  # every signed ack the sandbox sent was accepted
    body = platform.api.get(f"/api/v1/messages/{message_id}").json()
    assert body["status"] == "read" and body["contact"]["wa_id"] == "16505551234"

    # and the live inbox saw every step
    work_until(lambda: {"message.sent", "message.status"} <= set(listener.types()))
    statuses = [e["data"]["status"] for e in listener.events if e["type"] == "message.status"]
    assert statuses[-1] == "read"

    # and the receiver got each event once, in order for the conversation, signed
    work_until(lambda: not WebhookDelivery.objects.exclude(status="succeeded").exists(), "webhooks")
    deliveries = webhook_receiver.wait_for(4)
    types = [d.json()["type"] for d in deliveries]
    assert types[:2] == ["message.queued", "conversation.updated"] or types[0] == "message.queued"
    assert [t for t in types if t.startswith("message.")][-1] == "message.status"
    assert len({d.headers["x-wa-event-id"] for d in deliveries}) == len(deliveries)
    for delivery in deliveries:
        expected = sign(secret, delivery.headers["x-wa-timestamp"], delivery.body)
        assert delivery.headers["x-wa-signature"] == expected
        assert json.loads(delivery.body)["id"] == delivery.headers["x-wa-event-id"]
    assert sign("wrong-secret", deliveries[0].headers["x-wa-timestamp"], deliveries[0].body) != \
        deliveries[0].headers["x-wa-signature"]


def test_a_webhook_carries_the_message_exactly_as_get_returns_it(platform, webhook_receiver):
    # given an endpoint for message events
    created = platform.api.post("/api/v1/webhooks", {"url": webhook_receiver.url,
                                                     "event_types": ["message.status", "message.received"]},
                                format="json")
    assert created.status_code == 201

    # when a text is sent and read, and the contact writes back
    sent = platform.api.post("/api/v1/messages", {"to": "16505551234", "type": "text", "text": {"body": "One shape"}},
                             format="json").json()
    work_until(lambda: Message.objects.get(pk=sent["id"]).status == "read")
    call_command("simulate_inbound", platform.tenant.slug, "--from", "16505551234", "--text", "Got it")
    work_until(lambda: Message.objects.filter(direction="in").exists()
               and not WebhookDelivery.objects.exclude(status="succeeded").exists())

    # then each webhook's data is the message as GET /api/v1/messages/{id} answers
    [read] = webhook_receiver.wait_for(1, match=lambda d: d.json()["data"]["status"] == "read")
    [received] = webhook_receiver.wait_for(1, match=lambda d: d.json()["type"] == "message.received")
    assert read.json()["data"] == platform.api.get(f"/api/v1/messages/{sent['id']}").json()
    inbound_id = received.json()["data"]["id"]
    assert received.json()["data"] == platform.api.get(f"/api/v1/messages/{inbound_id}").json()
