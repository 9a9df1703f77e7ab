"""Inbound: signed webhooks from both dialects, dedupe, fail-closed signatures, every Cloud fixture."""

import json
import threading
import time

import django_rq
import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.test import Client
from django.test.utils import CaptureQueriesContext

from messaging.models import Conversation, Message, PendingStatus
from pooling import services as pooling
from pooling.bridges.signatures import cloud_signature, waha_signature
from tests.factories import TenantFactory
from tests.messaging.conftest import start_cloud_session, work_until
from tests.waiting import wait_until
from waplatform.models import OutboxEvent

pytestmark = pytest.mark.integration

APP_SECRET = "cloud-app-secret"


def waha_envelope(session: str, message_id: str, sender: str = "4915112345678", text: str = "hi",
                  at: float | None = None) -> bytes:
    at = time.time() if at is None else at
    return json.dumps({
        "id": "evt_1", "timestamp": int(at * 1000), "event": "message", "session": session,
        "payload": {"id": message_id, "timestamp": int(at), "from": f"{sender}@c.us", "fromMe": False,
                    "body": text, "hasMedia": False, "_data": {"notifyName": "Ann", "type": "chat"}},
    }).encode()


def post_waha(slot_id: int, body: bytes, secret: str):
    return Client().post(f"/hooks/waha/{slot_id}/", data=body, content_type="application/json",
                         HTTP_X_WEBHOOK_HMAC=waha_signature(secret, body), HTTP_X_WEBHOOK_HMAC_ALGORITHM="sha512")


def post_cloud(body: bytes, secret: str = APP_SECRET):
    return Client().post("/hooks/cloud/", data=body, content_type="application/json",
                         HTTP_X_HUB_SIGNATURE_256=cloud_signature(secret, body))


def dated(delivery: dict, at: float | None = None) -> dict:
    """A Cloud delivery whose messages and statuses carry `at` (now by default): the intake refuses stale ones."""
    stamp = str(int(time.time() if at is None else at))
    for entry in delivery["entry"]:
        for change in entry["changes"]:
            for item in change["value"].get("messages", []) + change["value"].get("statuses", []):
                item["timestamp"] = stamp
    return delivery


def test_inbound_through_the_sandbox_lands_in_a_new_conversation(platform):
    # when the sandbox delivers a message from a new contact (signed, to the live server)
    call_command("simulate_inbound", platform.tenant.slug, "--from", "4915112345678", "--text", "Hallo", "--name", "Ann")

    # then it is stored once, with its contact, conversation and 24 h window
    message = work_until(lambda: Message.objects.filter(tenant=platform.tenant, direction="in").first())
    assert (message.text, message.status, message.contact.wa_id, message.contact.name) == \
        ("Hallo", "received", "4915112345678", "Ann")
    conversation = Conversation.objects.get(pk=message.conversation_id)
    assert conversation.last_inbound_at is not None and conversation.unread_count == 1
    listed = platform.api.get(f"/api/v1/conversations/{conversation.pk}/messages").json()["results"]
    assert [m["id"] for m in listed] == [message.pk]


def test_waha_redeliveries_are_stored_once(platform):
    body = waha_envelope(platform.session.name, "false_4915112345678@c.us_AAAA")

    answers = [post_waha(platform.slot.pk, body, platform.slot.webhook_secret) for _ in range(3)]

    assert [a.status_code for a in answers] == [200] * 3
    assert [a.json()["received"] for a in answers] == [1, 0, 0]
    assert Message.objects.filter(provider_message_id="false_4915112345678@c.us_AAAA").count() == 1
    assert Conversation.objects.get(tenant=platform.tenant).unread_count == 1


def test_the_conversation_event_counts_what_the_inbox_shows_and_an_inbound_costs_a_fixed_budget(
        platform, django_assert_max_num_queries):
    # Intake publishes message.received and conversation.updated from the rows in hand (a new
    # conversation's counters are known); what it announces must match what is stored.
    at = time.time()
    with django_assert_max_num_queries(23):  # 31 reading back what it had just written; 25 asking for endpoints
        first = post_waha(platform.slot.pk, waha_envelope(platform.session.name, "false_49151@c.us_B1", at=at),
                          platform.slot.webhook_secret)
    second = post_waha(platform.slot.pk, waha_envelope(platform.session.name, "false_49151@c.us_B2", text="again"),
                       platform.slot.webhook_secret)
    assert [first.status_code, second.status_code] == [200, 200]

    conversation = Conversation.objects.get(tenant=platform.tenant)
    updates = [row.envelope["data"] for row in OutboxEvent.objects.filter(type="conversation.updated").order_by("pk")]
    assert [u["unread_count"] for u in updates] == [1, 2] == [1, conversation.unread_count]
    assert updates[-1]["last_inbound_at"] == conversation.last_inbound_at.isoformat()
    received = [row.envelope["data"] for row in OutboxEvent.objects.filter(type="message.received").order_by("pk")]
    assert [(r["text"], r["contact"]["name"], r["conversation_id"]) for r in received] == \
        [("hi", "Ann", conversation.pk), ("again", "Ann", conversation.pk)]
    assert not OutboxEvent.objects.filter(delivered_at__isnull=True).exists()


def test_a_session_is_routed_from_the_process_copy_until_it_is_deleted(platform):
    first = post_waha(platform.slot.pk, waha_envelope(platform.session.name, "false_49151@c.us_R1"),
                      platform.slot.webhook_secret)
    assert first.json()["received"] == 1

    # The next webhook of the session does not ask the database whose session it is.
    with CaptureQueriesContext(connection) as queries:
        second = post_waha(platform.slot.pk, waha_envelope(platform.session.name, "false_49151@c.us_R2"),
                           platform.slot.webhook_secret)
    assert second.json()["received"] == 1
    assert not [q["sql"] for q in queries.captured_queries if "pooling_assignment" in q["sql"]]

    # Once the session is gone (its tenant deleted, or the session alone), no process routes to it.
    platform.session.delete()
    third = post_waha(platform.slot.pk, waha_envelope(platform.session.name, "false_49151@c.us_R3"),
                      platform.slot.webhook_secret)
    assert third.status_code == 200 and third.json()["received"] == 0
    assert not Message.objects.filter(provider_message_id="false_49151@c.us_R3").exists()


def waha_ack(session: str, message_id: str, ack: int, name: str) -> bytes:
    return json.dumps({
        "id": f"evt_ack_{ack}", "timestamp": int(time.time() * 1000), "event": "message.ack", "session": session,
        "payload": {"id": message_id, "from": "4915112345678@c.us", "to": "4915112345678@c.us", "fromMe": True,
                    "ack": ack, "ackName": name},
    }).encode()


def test_an_ack_is_recorded_in_the_request_and_announced_to_subscribers_by_the_relay(
        platform, django_assert_max_num_queries):
    # given an outbound message the bridge took
    reply = platform.api.post("/api/v1/messages", {"to": "4915112345678", "type": "text", "text": {"body": "hello"}},
                              format="json").json()
    # Only the send queue: the sandbox's own acks (50 ms after the send) stay in the hook relay
    # until the end. work_until hands them over too, and could make the message `delivered`
    # before this ever saw it `sent` (seen once in CI).
    send_queue = django_rq.get_worker(platform.tenant.tier.send_queue)
    wait_until(lambda: Message.objects.get(pk=reply["id"]).status == "sent",
               step=lambda: send_queue.work(burst=True, with_scheduler=True))
    sent = Message.objects.get(pk=reply["id"])

    # when the bridge acks it twice: delivered, then read
    with django_assert_max_num_queries(7):  # 11 while the web process ran the subscribers itself
        delivered = post_waha(platform.slot.pk, waha_ack(platform.session.name, sent.provider_message_id, 2, "DEVICE"),
                              platform.slot.webhook_secret)
    read = post_waha(platform.slot.pk, waha_ack(platform.session.name, sent.provider_message_id, 3, "READ"),
                     platform.slot.webhook_secret)

    # then both are stored by the request, and their events wait for the relay, not for nothing
    assert [delivered.json()["statuses"], read.json()["statuses"]] == [{"applied": 1}, {"applied": 1}]
    stored = Message.objects.get(pk=sent.pk)
    assert stored.status == "read" and stored.delivered_at and stored.read_at
    events = OutboxEvent.objects.filter(type="message.status").order_by("pk")
    assert [row.envelope["data"]["status"] for row in events] == ["delivered", "read"]
    assert events.filter(delivered_at__isnull=True).count() == 2
    work_until(lambda: not events.filter(delivered_at__isnull=True).exists(), "maintenance")
    assert events.last().envelope["data"]["read_at"] is not None


def test_concurrent_redeliveries_are_stored_once(platform):
    """Two deliveries of one message racing: both miss the existing row, one INSERT wins
    the unique constraint, the other re-reads it inside its savepoint."""
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip("parallel transactions need a database each thread connects to on its own")
    body = waha_envelope(platform.session.name, "false_4915112345678@c.us_RACE")
    answers = []

    def deliver():
        try:
            answers.append(post_waha(platform.slot.pk, body, platform.slot.webhook_secret).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert answers == [200] * 8
    assert Message.objects.filter(provider_message_id="false_4915112345678@c.us_RACE").count() == 1
    assert Conversation.objects.get(tenant=platform.tenant).unread_count == 1


def test_forged_unsigned_or_unknown_slot_webhooks_are_401_and_store_nothing(platform):
    body = waha_envelope(platform.session.name, "false_1@c.us_FORGED")
    client = Client()

    forged = post_waha(platform.slot.pk, body, "not-the-slot-key")
    unsigned = client.post(f"/hooks/waha/{platform.slot.pk}/", data=body, content_type="application/json")
    unknown_slot = post_waha(999999, body, platform.slot.webhook_secret)
    cloud_forged = post_cloud(b'{"object":"whatsapp_business_account","entry":[]}', secret="wrong")
    cloud_unsigned = client.post("/hooks/cloud/", data=b"{}", content_type="application/json")

    assert [r.status_code for r in (forged, unsigned, unknown_slot, cloud_forged, cloud_unsigned)] == [401] * 5
    assert not Message.objects.exists()


def test_cloud_inbound_and_statuses_through_the_sandbox_with_pricing(transactional_db, hook_relay, spawn_sandbox):
    # given a tenant on a Cloud API number hosted by a sandbox worker
    sandbox = spawn_sandbox(capacity=3, auto_scan_seconds=0.3, ack_delay=0.05)
    tenant = TenantFactory()
    start_cloud_session(tenant, sandbox)

    # when a contact writes, and we send a text
    call_command("simulate_inbound", tenant.slug, "--from", "16505551234", "--text", "Does it come in red?")
    inbound = work_until(lambda: Message.objects.filter(tenant=tenant, direction="in").first())
    from tests.conftest import client_for

    sent = client_for(tenant).post("/api/v1/messages", {"to": "16505551234", "text": {"body": "Yes"}}, format="json")

    # then both land, and the Cloud statuses walk the message to read with its pricing
    assert inbound.text == "Does it come in red?" and inbound.provider_message_id.startswith("wamid.")
    message = work_until(lambda: (m := Message.objects.get(pk=sent.json()["id"])).status == "read" and m)
    assert (message.pricing_category, message.pricing_model, message.pricing_type) == ("service", "PMP", "regular")


@pytest.mark.django_db
def test_every_cloud_fixture_is_accepted_and_lands(fixtures_dir, settings):
    tenants = {pnid: TenantFactory() for pnid in ("1122334455667", "106540352242922", "<BUSINESS_PHONE_NUMBER_ID>")}
    for pnid, tenant in tenants.items():
        pooling.assign_number(phone_number_id=pnid, tenant=tenant)
        pooling.start_session(tenant=tenant, phone_number_id=pnid)
    statuses = json.loads((fixtures_dir / "message_status.json").read_text())
    outbound_id = statuses["sent"]["entry"][0]["changes"][0]["value"]["statuses"][0]["id"]
    from messaging import services

    main = tenants["1122334455667"]
    accepted = services.send_message(tenant=main, to="16505551234", type="text", text="x")
    services.record_sent(message_id=accepted.message.pk, provider_message_id=outbound_id)

    expected_messages, expected_statuses = set(), 0
    for path in sorted(fixtures_dir.glob("*.json")):
        for case, delivery in json.loads(path.read_text()).items():
            body = json.dumps(dated(delivery)).encode()
            response = post_cloud(body)
            assert response.status_code == 200, (path.name, case, response.content)
            for entry in delivery["entry"]:
                for change in entry["changes"]:
                    value = change["value"]
                    pnid = value["metadata"]["phone_number_id"]
                    expected_messages |= {(tenants[pnid].pk, m["id"]) for m in value.get("messages", [])}
                    expected_statuses += len(value.get("statuses", []))

    # The fixtures reuse "wamid.xyzxyz" for inbound messages and for our outbound one's
    # statuses; (tenant, provider id) is unique, so that id is the outbound row.
    stored = set(Message.objects.values_list("tenant_id", "provider_message_id"))
    assert stored == expected_messages
    assert Message.objects.filter(direction="in").count() == len(expected_messages) - 1
    outbound = Message.objects.get(pk=accepted.message.pk)
    assert outbound.status == "failed" and outbound.error_code  # sent → … → failed: failed is terminal
    assert PendingStatus.objects.filter(tenant=tenants["<BUSINESS_PHONE_NUMBER_ID>"]).count() == 1
    assert expected_statuses == 7


@pytest.mark.django_db
def test_cloud_subscription_handshake(settings):
    client = Client()
    ok = client.get("/hooks/cloud/", {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "42"})
    bad = client.get("/hooks/cloud/", {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"})
    assert (ok.status_code, ok.content, bad.status_code) == (200, b"42", 403)
