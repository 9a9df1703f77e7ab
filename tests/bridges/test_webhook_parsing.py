"""Webhook intake: signatures fail closed, and real Cloud API payloads lose nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pooling.bridges.base import InvalidSignature
from pooling.bridges.cloud import CloudBridge
from pooling.bridges.signatures import cloud_signature, waha_signature
from pooling.bridges.waha import WahaBridge

SECRET = "app-secret"


def signed_cloud(payload: dict) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"X-Hub-Signature-256": cloud_signature(SECRET, body)}


def signed_waha(payload: dict, key: str = SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"X-Webhook-Hmac": waha_signature(key, body), "X-Webhook-Hmac-Algorithm": "sha512"}


def test_waha_signature_matches_the_documented_example() -> None:
    digest = waha_signature("my-secret-key", b'{"event":"message","session":"default","engine":"WEBJS"}')

    assert digest.startswith("208f8a55") and digest.endswith("3fa89")


# --- signatures fail closed -------------------------------------------------------------------


@pytest.mark.parametrize("bridge", [WahaBridge, CloudBridge])
def test_empty_secret_rejects_even_a_matching_signature(bridge: type) -> None:
    body = b'{"event":"message"}'
    headers = {"X-Webhook-Hmac": waha_signature("", body), "X-Hub-Signature-256": cloud_signature("", body)}

    with pytest.raises(InvalidSignature):
        bridge.parse_webhook(body, headers, "")


@pytest.mark.parametrize("bridge", [WahaBridge, CloudBridge])
def test_missing_header_is_invalid(bridge: type) -> None:
    with pytest.raises(InvalidSignature):
        bridge.parse_webhook(b"{}", {}, SECRET)


def test_waha_forged_and_tampered_bodies_are_invalid() -> None:
    body, headers = signed_waha({"event": "message", "session": "s1", "payload": {}})

    with pytest.raises(InvalidSignature):
        WahaBridge.parse_webhook(body, headers, "another-secret")
    with pytest.raises(InvalidSignature):
        WahaBridge.parse_webhook(body + b" ", headers, SECRET)
    with pytest.raises(InvalidSignature):
        WahaBridge.parse_webhook(body, {**headers, "X-Webhook-Hmac-Algorithm": "sha1"}, SECRET)
    with pytest.raises(InvalidSignature):
        WahaBridge.parse_webhook(body, {"X-Webhook-Hmac": "zz\u00e9"}, SECRET)


def test_cloud_forged_and_tampered_bodies_are_invalid() -> None:
    body, headers = signed_cloud({"object": "whatsapp_business_account", "entry": []})

    with pytest.raises(InvalidSignature):
        CloudBridge.parse_webhook(body, headers, "another-secret")
    with pytest.raises(InvalidSignature):
        CloudBridge.parse_webhook(body.replace(b"[]", b"[ ]"), headers, SECRET)
    with pytest.raises(InvalidSignature):
        CloudBridge.parse_webhook(body, {"X-Hub-Signature-256": headers["X-Hub-Signature-256"][7:]}, SECRET)


def test_header_names_are_case_insensitive() -> None:
    body, headers = signed_cloud({"object": "whatsapp_business_account", "entry": []})

    assert CloudBridge.parse_webhook(body, {"x-hub-signature-256": headers["X-Hub-Signature-256"]}, SECRET) == []
    body, headers = signed_waha({"event": "session.status", "session": "s1", "payload": {"status": "WORKING"}})
    lowered = {k.upper(): v for k, v in headers.items()}
    assert WahaBridge.parse_webhook(body, lowered, SECRET)[0].status == "WORKING"


# --- Cloud verification handshake ----------------------------------------------------------


def test_verify_subscription() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "vt-123", "hub.challenge": "1158201444"}

    assert CloudBridge.verify_subscription(params, "vt-123") == "1158201444"
    assert CloudBridge.verify_subscription(params, "other") is None
    assert CloudBridge.verify_subscription(params, "") is None
    assert CloudBridge.verify_subscription({**params, "hub.verify_token": ""}, "") is None
    assert CloudBridge.verify_subscription({**params, "hub.mode": "unsubscribe"}, "vt-123") is None


# --- every real Cloud API fixture, nothing dropped -------------------------------------------


def fixture_cases(directory: Path) -> list[tuple[str, dict]]:
    cases = []
    for path in sorted(directory.glob("*.json")):
        for name, payload in json.loads(path.read_text()).items():
            cases.append((f"{path.stem}:{name}", payload))
    return cases


def test_every_cloud_fixture_parses_with_nothing_dropped(fixtures_dir: Path) -> None:
    cases = fixture_cases(fixtures_dir)
    assert len(cases) >= 30  # all seven files are there

    for case, payload in cases:
        values = [c["value"] for e in payload["entry"] for c in e["changes"]]
        expected_messages = sum(len(v.get("messages", [])) for v in values)
        expected_statuses = sum(len(v.get("statuses", [])) for v in values)
        body, headers = signed_cloud(payload)

        events = CloudBridge.parse_webhook(body, headers, SECRET)

        messages = [e for e in events if e.kind == "message"]
        statuses = [e for e in events if e.kind == "status"]
        assert (len(messages), len(statuses)) == (expected_messages, expected_statuses), case
        assert messages or statuses or events, case
        for event in events:
            assert event.session == values[0]["metadata"]["phone_number_id"], case
            assert event.raw, case
        for message, raw in zip(messages, [m for v in values for m in v.get("messages", [])]):
            assert message.provider_message_id == raw["id"], case
            assert message.message_type == raw["type"], case  # unknown types kept as given
            assert message.chat_id == raw["from"], case
            assert message.timestamp is not None and message.timestamp.tzinfo is not None, case
        for status, raw in zip(statuses, [s for v in values for s in v.get("statuses", [])]):
            assert (status.provider_message_id, status.status) == (raw["id"], raw["status"]), case


def test_cloud_text_message_fields(fixtures_dir: Path) -> None:
    payload = json.loads((fixtures_dir / "message.json").read_text())["text"]
    [event] = CloudBridge.parse_webhook(*signed_cloud(payload), SECRET)
    raw = payload["entry"][0]["changes"][0]["value"]

    assert event.kind == "message" and event.message_type == "text"
    assert event.text == raw["messages"][0]["text"]["body"]
    assert event.contact_name == raw["contacts"][0]["profile"]["name"]
    assert event.timestamp == datetime.fromtimestamp(int(raw["messages"][0]["timestamp"]), tz=UTC)
    assert event.from_me is False


def test_cloud_status_pricing_errors_and_correlation(fixtures_dir: Path) -> None:
    statuses = json.loads((fixtures_dir / "message_status.json").read_text())

    [sent] = CloudBridge.parse_webhook(*signed_cloud(statuses["with_tracker"]), SECRET)
    [failed] = CloudBridge.parse_webhook(*signed_cloud(statuses["failed"]), SECRET)

    assert sent.pricing == {"category": "service", "pricing_model": "CBP", "type": None}
    assert sent.correlation == "some data"
    assert sent.chat_id == "972987654321" and sent.contact_name == "Test Name"
    assert (failed.status, failed.error_code) == ("failed", "130472")
    assert failed.error_reason == "User's number is part of an experiment"


def test_cloud_replies_reactions_buttons_and_errors(fixtures_dir: Path) -> None:
    messages = json.loads((fixtures_dir / "message.json").read_text())
    buttons = json.loads((fixtures_dir / "callback_button.json").read_text())

    [reply] = CloudBridge.parse_webhook(*signed_cloud(messages["reply"]), SECRET)
    [reaction] = CloudBridge.parse_webhook(*signed_cloud(messages["reaction"]), SECRET)
    [button] = CloudBridge.parse_webhook(*signed_cloud(buttons["button"]), SECRET)
    [image] = CloudBridge.parse_webhook(*signed_cloud(messages["image"]), SECRET)
    [with_err] = CloudBridge.parse_webhook(*signed_cloud(messages["interactive_message_with_err"]), SECRET)
    [unsupported] = CloudBridge.parse_webhook(*signed_cloud(messages["unsupported_with_type"]), SECRET)

    assert reply.reply_to.startswith("wamid.")
    assert reaction.message_type == "reaction" and reaction.text and reaction.reply_to
    assert button.message_type == "interactive" and button.text and button.reply_to
    assert image.media and image.media.get("mime_type")
    assert with_err.error_code == "131000"
    assert (unsupported.message_type, unsupported.error_code) == ("unsupported", "131051")


def test_cloud_non_message_changes_are_kept_as_unknown() -> None:
    payload = {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [
        {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}},
        {"field": "messages", "value": {"metadata": {"phone_number_id": "77"},
                                        "errors": [{"code": 131000, "title": "Something went wrong"}]}},
    ]}]}

    events = CloudBridge.parse_webhook(*signed_cloud(payload), SECRET)

    assert [e.kind for e in events] == ["unknown", "unknown"]
    assert events[0].message_type == "account_update" and events[0].raw["value"] == {"event": "VERIFIED_ACCOUNT"}
    assert (events[1].session, events[1].error_code) == ("77", "131000")


def test_cloud_signed_garbage_is_a_value_error() -> None:
    body = b"not json"

    with pytest.raises(ValueError):
        CloudBridge.parse_webhook(body, {"X-Hub-Signature-256": cloud_signature(SECRET, body)}, SECRET)


# --- WAHA envelopes ------------------------------------------------------------------------------


def test_waha_inbound_message() -> None:
    envelope = {"id": "evt_1", "timestamp": 1741249702485, "event": "message", "session": "t42-n1",
                "payload": {"id": "false_16505551234@c.us_AAAA", "timestamp": 1741249702, "from": "16505551234@c.us",
                            "fromMe": False, "body": "hello", "hasMedia": False, "replyTo": None,
                            "_data": {"notifyName": "Alice"}}}

    [event] = WahaBridge.parse_webhook(*signed_waha(envelope), SECRET)

    assert (event.kind, event.session, event.chat_id, event.contact_name) == ("message", "t42-n1", "16505551234", "Alice")
    assert (event.provider_message_id, event.text, event.message_type) == ("false_16505551234@c.us_AAAA", "hello", "text")
    assert event.timestamp == datetime.fromtimestamp(1741249702, tz=UTC)


@pytest.mark.parametrize(("ack", "name", "status"),
                         [(1, "SERVER", "sent"), (2, "DEVICE", "delivered"), (3, "READ", "read"),
                          (4, "PLAYED", "played"), (-1, "ERROR", "failed")])
def test_waha_acks(ack: int, name: str, status: str) -> None:
    envelope = {"event": "message.ack", "session": "s1", "timestamp": 1741249702485,
                "payload": {"id": "true_1555@c.us_X", "from": "1555@c.us", "participant": None, "fromMe": True,
                            "ack": ack, "ackName": name}}

    [event] = WahaBridge.parse_webhook(*signed_waha(envelope), SECRET)

    assert (event.kind, event.status, event.provider_message_id, event.chat_id) == ("status", status, "true_1555@c.us_X", "1555")


def test_waha_session_status_and_unknown_events_are_kept() -> None:
    [session] = WahaBridge.parse_webhook(*signed_waha({"event": "session.status", "session": "s1",
                                                       "payload": {"status": "SCAN_QR_CODE"}}), SECRET)
    [other] = WahaBridge.parse_webhook(*signed_waha({"event": "presence.update", "session": "s1",
                                                     "payload": {"id": "1@c.us"}}), SECRET)
    [pending] = WahaBridge.parse_webhook(*signed_waha({"event": "message.ack", "session": "s1",
                                                       "payload": {"id": "x", "ack": 0, "ackName": "PENDING"}}), SECRET)

    assert (session.kind, session.status) == ("session", "SCAN_QR_CODE")
    assert (other.kind, other.message_type, other.raw["event"]) == ("unknown", "presence.update", "presence.update")
    assert pending.kind == "unknown"
