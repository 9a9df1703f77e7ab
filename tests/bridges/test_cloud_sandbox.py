"""The Cloud API adapter against the sandbox's Cloud dialect, and what the sandbox shows of itself."""

from __future__ import annotations

import httpx
import pytest

from pooling.bridges.base import (
    InvalidSignature,
    OutboundMessage,
    PermanentBridgeError,
    SessionNotFound,
    SlotFullError,
    TransientBridgeError,
    get_bridge,
)
from pooling.bridges.cloud import CloudBridge
from tests.bridges.conftest import Delivery, SandboxWorker, WebhookReceiver

pytestmark = pytest.mark.integration

PHONE_NUMBER_ID = "106540352242922"
TOKEN = "EAAG-sandbox-token"
APP_SECRET = "cloud-app-secret"


def cloud_for(worker: SandboxWorker, token: str = TOKEN, version: str = "/v21.0") -> CloudBridge:
    bridge = get_bridge("cloud", base_url=worker.base_url + version, api_key=token, timeout=5, sandbox=True)
    assert isinstance(bridge, CloudBridge)
    return bridge


def has_statuses(delivery: Delivery) -> bool:
    return "statuses" in delivery.json()["entry"][0]["changes"][0]["value"]


def has_messages(delivery: Delivery) -> bool:
    return "messages" in delivery.json()["entry"][0]["changes"][0]["value"]


def test_register_send_and_statuses_with_pricing(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    bridge = cloud_for(sandbox)

    info = bridge.start_session(PHONE_NUMBER_ID, webhook_url=webhook_receiver.url, webhook_secret=APP_SECRET)
    result = bridge.send(PHONE_NUMBER_ID, OutboundMessage(to="+1 650 555 1234", type="text", text="Hello",
                                                          correlation="tenant:42|job:9001"))

    assert info.status == "WORKING" and "Sandbox" in info.raw["verified_name"]
    assert result.provider_message_id.startswith("wamid.")
    deliveries = webhook_receiver.wait_for(3, has_statuses)
    events = [e for d in deliveries for e in CloudBridge.parse_webhook(d.body, d.headers, APP_SECRET)]
    assert sorted(e.status for e in events) == ["delivered", "read", "sent"]  # arrival order is not guaranteed
    for event in events:
        assert (event.kind, event.session, event.chat_id) == ("status", PHONE_NUMBER_ID, "16505551234")
        assert event.provider_message_id == result.provider_message_id
        assert event.pricing == {"category": "service", "pricing_model": "PMP", "type": "regular"}
        assert event.correlation == "tenant:42|job:9001"
    assert deliveries[0].headers["x-hub-signature-256"].startswith("sha256=")
    with pytest.raises(InvalidSignature):
        CloudBridge.parse_webhook(deliveries[0].body, deliveries[0].headers, "not-the-app-secret")


def test_every_send_type_and_mark_seen(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    bridge = cloud_for(sandbox, version="")  # the sandbox accepts Graph paths with or without a version
    bridge.start_session(PHONE_NUMBER_ID, webhook_url=webhook_receiver.url, webhook_secret=APP_SECRET)
    messages = [
        OutboundMessage(to="16505551234", type="text", text="hi", reply_to="wamid.prev"),
        OutboundMessage(to="16505551234", type="image", media_url="https://example.test/a.jpg", caption="a"),
        OutboundMessage(to="16505551234", type="document", media_url="https://example.test/r", filename="r.pdf"),
        OutboundMessage(to="16505551234", type="audio", media_url="https://example.test/v.ogg"),
        OutboundMessage(to="16505551234", type="video", media_url="https://example.test/v.mp4"),
        OutboundMessage(to="16505551234", type="location", latitude=1.0, longitude=2.0),
        OutboundMessage(to="16505551234", type="reaction", reaction_to="wamid.prev", emoji="👍"),
        OutboundMessage(to="16505551234", type="template",
                        template={"name": "order_update", "language": {"code": "en_US"}}),
    ]

    ids = [bridge.send(PHONE_NUMBER_ID, m).provider_message_id for m in messages]
    bridge.mark_seen(PHONE_NUMBER_ID, "16505551234", ids[:1])

    assert len(set(ids)) == len(messages) and all(i.startswith("wamid.") for i in ids)


def test_inbound_injection_uses_the_cloud_envelope(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    cloud_for(sandbox).start_session(PHONE_NUMBER_ID, webhook_url=webhook_receiver.url, webhook_secret=APP_SECRET)

    answer = sandbox.control("POST", "/sandbox/inbound",
                             json={"session": PHONE_NUMBER_ID, "from": "15551234567", "text": "hi", "name": "Alice"})

    [delivery] = webhook_receiver.wait_for(1, has_messages)
    body = delivery.json()
    assert body["object"] == "whatsapp_business_account"
    change = body["entry"][0]["changes"][0]
    assert change["field"] == "messages"
    assert change["value"]["metadata"]["phone_number_id"] == PHONE_NUMBER_ID
    assert change["value"]["contacts"] == [{"profile": {"name": "Alice"}, "wa_id": "15551234567"}]
    [event] = CloudBridge.parse_webhook(delivery.body, delivery.headers, APP_SECRET)
    assert (event.kind, event.provider_message_id, event.text) == ("message", answer.json()["id"], "hi")
    assert (event.chat_id, event.contact_name, event.message_type) == ("15551234567", "Alice", "text")
    assert event.provider_message_id.startswith("wamid.")


def test_echo_contact_replies(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    bridge = cloud_for(sandbox)
    bridge.start_session(PHONE_NUMBER_ID, webhook_url=webhook_receiver.url, webhook_secret=APP_SECRET)

    bridge.send(PHONE_NUMBER_ID, OutboundMessage(to="15550009999", type="text", text="ping"))

    [delivery] = webhook_receiver.wait_for(1, has_messages)
    [event] = CloudBridge.parse_webhook(delivery.body, delivery.headers, APP_SECRET)
    assert (event.chat_id, event.text) == ("15550009999", "Sandbox echo: ping")


def test_wrong_token_and_unknown_number(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    cloud_for(sandbox).start_session(PHONE_NUMBER_ID, webhook_url=webhook_receiver.url, webhook_secret=APP_SECRET)
    intruder = cloud_for(sandbox, token="stolen")

    assert intruder.get_session(PHONE_NUMBER_ID).status == "FAILED"
    with pytest.raises(PermanentBridgeError) as caught:
        intruder.send(PHONE_NUMBER_ID, OutboundMessage(to="16505551234", type="text", text="x"))
    assert (caught.value.code, caught.value.http_status) == ("190", 401)
    with pytest.raises(SessionNotFound):
        cloud_for(sandbox).get_session("999")


def test_bad_send_is_permanent_and_rate_limit_transient(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    bridge = cloud_for(sandbox)
    bridge.start_session(PHONE_NUMBER_ID, webhook_url=webhook_receiver.url, webhook_secret=APP_SECRET)

    with pytest.raises(PermanentBridgeError) as bad:
        bridge.send(PHONE_NUMBER_ID, OutboundMessage(to="not-a-number", type="text", text="x"))
    sandbox.control("POST", "/sandbox/faults", json={"error_status": 400, "error_count": 1, "error_code": 130429})
    with pytest.raises(TransientBridgeError) as limited:
        bridge.send(PHONE_NUMBER_ID, OutboundMessage(to="16505551234", type="text", text="x"))

    assert bad.value.code == "100"
    assert (limited.value.code, limited.value.http_status) == ("130429", 400)


def test_cloud_numbers_count_toward_capacity(spawn_sandbox, webhook_receiver: WebhookReceiver) -> None:
    worker = spawn_sandbox(capacity=1)
    cloud_for(worker).start_session("1001", webhook_url=webhook_receiver.url, webhook_secret=APP_SECRET)

    with pytest.raises(SlotFullError):
        cloud_for(worker, token="other").start_session("1002", webhook_url=webhook_receiver.url,
                                                       webhook_secret=APP_SECRET)
    cloud_for(worker).delete_session("1001")
    cloud_for(worker, token="other").start_session("1002", webhook_url=webhook_receiver.url, webhook_secret=APP_SECRET)


def test_sandbox_says_it_is_a_sandbox(sandbox: SandboxWorker) -> None:
    front = httpx.get(sandbox.base_url + "/")
    status = httpx.get(sandbox.base_url + "/sandbox/status").json()
    refused = httpx.post(sandbox.base_url + "/sandbox/faults", json={"crash": True})

    assert "sandbox bridge worker" in front.text and "not WhatsApp" in front.text
    assert front.headers["x-sandbox"] == "true" and refused.headers["x-sandbox"] == "true"
    assert (status["sandbox"], status["capacity"]) == (True, 3) and status["pid"] == sandbox.process.pid
    assert refused.status_code == 401  # control endpoints need the API key
    assert httpx.get(sandbox.base_url + "/ping").json() == {"message": "pong"}
    assert httpx.get(sandbox.base_url + "/health").status_code == 200
