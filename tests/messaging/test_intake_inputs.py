"""Signed bridge payloads are checked before anything is stored: shape, types, depth and freshness.

A valid signature proves who made a body, not when, nor that its fields are
what the protocol says: a replayed `session.status: FAILED` from last year,
or a status that is an object, must change nothing.
"""

import json
import logging
import time

import pytest
from django.test import Client

from messaging.models import Message
from pooling import services as pooling
from pooling.bridges.signatures import cloud_signature, waha_signature
from pooling.models import WhatsAppSession
from tests.factories import TenantFactory
from tests.messaging.test_intake import APP_SECRET, post_cloud, post_waha, waha_envelope

pytestmark = pytest.mark.integration

YEAR_2000 = 946684800
PHONE_NUMBER_ID = "106540352242922"


def session_status(session: str, status, at: float | None = None) -> bytes:
    at = time.time() if at is None else at
    return json.dumps({"id": "evt_s", "timestamp": int(at * 1000), "event": "session.status", "session": session,
                       "payload": {"status": status}}).encode()


def cloud_delivery(*, messages=(), statuses=(), phone_number_id: str = PHONE_NUMBER_ID) -> bytes:
    value = {"messaging_product": "whatsapp", "metadata": {"phone_number_id": phone_number_id},
             "messages": list(messages), "statuses": list(statuses)}
    return json.dumps({"object": "whatsapp_business_account",
                       "entry": [{"id": "WABA", "changes": [{"field": "messages", "value": value}]}]}).encode()


def cloud_text(message_id: str, at: float | None = None, body="hi") -> dict:
    return {"from": "16505551234", "id": message_id, "timestamp": str(int(time.time() if at is None else at)),
            "type": "text", "text": {"body": body}}


def session_status_now(platform) -> str:
    return WhatsAppSession.objects.get(pk=platform.session.pk).status


# --- WAHA ------------------------------------------------------------------------------


def test_a_replayed_waha_session_failure_does_not_flip_the_session(platform, caplog):
    replay = session_status(platform.session.name, "FAILED", at=YEAR_2000)

    with caplog.at_level(logging.WARNING, logger="messaging.services.intake"):
        answer = post_waha(platform.slot.pk, replay, platform.slot.webhook_secret)

    assert (answer.status_code, answer.json()["refused"], answer.json()["sessions"]) == (200, 1, 0)
    assert session_status_now(platform) == "WORKING"
    assert "stale" in caplog.text and "2000-01-01" in caplog.text
    # the same event, fresh, is taken: the refusal was the date, nothing else
    fresh = post_waha(platform.slot.pk, session_status(platform.session.name, "FAILED"), platform.slot.webhook_secret)
    assert fresh.json()["sessions"] == 1 and session_status_now(platform) == "FAILED"


def test_a_session_status_older_than_the_state_window_is_refused_though_a_message_that_old_is_not(platform, settings):
    settings.INTAKE_MAX_STATE_AGE_SECONDS = 600
    settings.INTAKE_MAX_EVENT_AGE_SECONDS = 3600
    twenty_minutes_ago = time.time() - 1200
    secret = platform.slot.webhook_secret

    status = post_waha(platform.slot.pk, session_status(platform.session.name, "STOPPED", at=twenty_minutes_ago), secret)
    message = post_waha(platform.slot.pk, waha_envelope(platform.session.name, "false_1@c.us_LATE",
                                                        at=twenty_minutes_ago), secret)

    assert status.json()["refused"] == 1 and session_status_now(platform) == "WORKING"
    assert message.json()["received"] == 1


def test_replayed_and_future_dated_waha_messages_are_not_stored(platform):
    secret = platform.slot.webhook_secret

    old = post_waha(platform.slot.pk, waha_envelope(platform.session.name, "false_1@c.us_OLD", at=YEAR_2000), secret)
    future = post_waha(platform.slot.pk, waha_envelope(platform.session.name, "false_1@c.us_NEXT",
                                                       at=time.time() + 86400), secret)

    assert [old.json()["refused"], future.json()["refused"]] == [1, 1]
    assert not Message.objects.exists()


def test_a_signed_waha_event_without_a_timestamp_is_refused(platform):
    body = json.dumps({"event": "session.status", "session": platform.session.name,
                       "payload": {"status": "FAILED"}}).encode()

    answer = post_waha(platform.slot.pk, body, platform.slot.webhook_secret)

    assert answer.json()["refused"] == 1 and session_status_now(platform) == "WORKING"


@pytest.mark.parametrize("status", [{"x": 1}, ["FAILED"], 3, None, "", "HACKED", "PASSKEY_CONFIRMATION_REQUIRED"])
def test_a_signed_session_status_that_is_not_a_waha_status_stores_nothing(platform, status, caplog):
    events_before = platform.session.events.count()

    with caplog.at_level(logging.WARNING, logger="messaging.services.intake"):
        answer = post_waha(platform.slot.pk, session_status(platform.session.name, status),
                           platform.slot.webhook_secret)

    assert (answer.status_code, answer.json()["refused"]) == (200, 1)
    assert session_status_now(platform) == "WORKING"
    assert platform.session.events.count() == events_before
    assert "malformed: payload.status" in caplog.text


@pytest.mark.parametrize(("field", "value"), [
    ("body", {"x": 1}), ("body", 5), ("id", ["a"]), ("id", None), ("from", 4915112345678), ("fromMe", "yes"),
    ("timestamp", "yesterday"), ("timestamp", 1e300), ("media", "http://x"), ("_data", [1]),
])
def test_a_signed_waha_message_with_a_field_of_the_wrong_type_is_not_stored(platform, field, value):
    envelope = json.loads(waha_envelope(platform.session.name, "false_1@c.us_BAD"))
    envelope["payload"][field] = value

    answer = post_waha(platform.slot.pk, json.dumps(envelope).encode(), platform.slot.webhook_secret)

    assert (answer.status_code, answer.json()["refused"]) == (200, 1)
    assert not Message.objects.exists()


def test_one_malformed_envelope_does_not_sink_the_good_ones_delivered_with_it(platform):
    good = json.loads(waha_envelope(platform.session.name, "false_1@c.us_GOOD"))
    bad = json.loads(waha_envelope(platform.session.name, "false_1@c.us_BAD"))
    bad["payload"]["body"] = {"x": 1}

    answer = post_waha(platform.slot.pk, json.dumps([bad, good, 7]).encode(), platform.slot.webhook_secret)

    assert (answer.json()["received"], answer.json()["refused"]) == (1, 2)
    assert list(Message.objects.values_list("provider_message_id", flat=True)) == ["false_1@c.us_GOOD"]


# --- Cloud -----------------------------------------------------------------------------


@pytest.fixture
def cloud_tenant(db, settings):
    settings.CLOUD_API_APP_SECRET = APP_SECRET
    tenant = TenantFactory()
    pooling.assign_number(phone_number_id=PHONE_NUMBER_ID, tenant=tenant)
    pooling.start_session(tenant=tenant, phone_number_id=PHONE_NUMBER_ID)
    return tenant


def test_replayed_cloud_messages_and_statuses_are_refused_and_nothing_changes(cloud_tenant):
    from messaging import services

    accepted = services.send_message(tenant=cloud_tenant, to="16505551234", type="text", text="x")
    services.record_sent(message_id=accepted.message.pk, provider_message_id="wamid.OUT")
    old_read = {"id": "wamid.OUT", "status": "read", "timestamp": str(YEAR_2000), "recipient_id": "16505551234"}

    answer = post_cloud(cloud_delivery(messages=[cloud_text("wamid.OLD", at=YEAR_2000)], statuses=[old_read]))

    assert (answer.status_code, answer.json()["refused"]) == (200, 2)
    assert not Message.objects.filter(provider_message_id="wamid.OLD").exists()
    assert Message.objects.get(pk=accepted.message.pk).status == "sent"
    fresh = post_cloud(cloud_delivery(messages=[cloud_text("wamid.NEW")]))
    assert fresh.json()["received"] == 1


@pytest.mark.parametrize("delivery", [
    {"entry": {"x": 1}}, {"entry": [[1]]}, {"entry": [{"changes": "x"}]}, {"entry": [{"changes": [7]}]},
    {"entry": [{"changes": [{"field": "messages", "value": []}]}]},
    {"entry": [{"changes": [{"field": "messages", "value": {"metadata": {"phone_number_id": 106540352242922},
                                                              "messages": [{"id": "w"}]}}]}]},
    [1, 2], "text",
])
def test_signed_cloud_deliveries_of_the_wrong_shape_store_nothing(cloud_tenant, delivery):
    answer = post_cloud(json.dumps(delivery).encode())

    assert answer.status_code == 200 and answer.json()["refused"] >= 1
    assert not Message.objects.exists()


@pytest.mark.parametrize(("field", "value"), [
    ("text", {"body": {"x": 1}}), ("text", {"body": 5}), ("id", 12), ("from", ["x"]), ("timestamp", "soon"),
    ("type", None), ("context", "wamid.x"),
])
def test_a_signed_cloud_message_with_a_field_of_the_wrong_type_is_not_stored(cloud_tenant, field, value):
    message = cloud_text("wamid.BAD")
    message[field] = value

    answer = post_cloud(cloud_delivery(messages=[message, cloud_text("wamid.GOOD")]))

    assert (answer.json()["refused"], answer.json()["received"]) == (1, 1)
    assert list(Message.objects.values_list("provider_message_id", flat=True)) == ["wamid.GOOD"]


def test_a_signed_cloud_status_that_is_not_a_status_is_refused(cloud_tenant):
    bogus = {"id": "wamid.OUT", "status": {"x": 1}, "timestamp": str(int(time.time())), "recipient_id": "1"}

    answer = post_cloud(cloud_delivery(statuses=[bogus]))

    assert answer.json()["refused"] == 1 and answer.json()["statuses"] == {}


# --- depth and signatures, both intakes ---------------------------------------------------

DEEP = b'{"event": "message", "payload": ' + b"[" * 1000 + b"]" * 1000 + b"}"


def test_a_signed_1000_level_body_is_400_on_both_intakes(platform, cloud_tenant):
    waha = post_waha(platform.slot.pk, DEEP, platform.slot.webhook_secret)
    cloud = post_cloud(DEEP)

    for answer in (waha, cloud):
        assert (answer.status_code, answer.json()["code"]) == (400, "json_too_deep")
    assert not Message.objects.exists()


def test_an_oversized_signed_body_is_413_on_both_intakes(platform, cloud_tenant, settings):
    settings.API_JSON_MAX_BYTES = settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2_000
    body = waha_envelope(platform.session.name, "false_1@c.us_BIG", text="x" * 5_000)

    waha = Client(raise_request_exception=False).post(
        f"/hooks/waha/{platform.slot.pk}/", data=body, content_type="application/json",
        HTTP_X_WEBHOOK_HMAC=waha_signature(platform.slot.webhook_secret, body))
    cloud = Client(raise_request_exception=False).post(
        "/hooks/cloud/", data=body, content_type="application/json",
        HTTP_X_HUB_SIGNATURE_256=cloud_signature(APP_SECRET, body))

    for answer in (waha, cloud):
        assert (answer.status_code, answer.json()["code"]) == (413, "payload_too_large")
    assert not Message.objects.exists()


def _waha_headers(platform, body: bytes) -> dict[str, dict]:
    good = waha_signature(platform.slot.webhook_secret, body)
    return {
        "missing": {},
        "empty": {"HTTP_X_WEBHOOK_HMAC": ""},
        "forged": {"HTTP_X_WEBHOOK_HMAC": waha_signature("not-the-slot-key", body)},
        "for another body": {"HTTP_X_WEBHOOK_HMAC": waha_signature(platform.slot.webhook_secret, body + b" ")},
        "another algorithm": {"HTTP_X_WEBHOOK_HMAC": good, "HTTP_X_WEBHOOK_HMAC_ALGORITHM": "sha256"},
        "truncated": {"HTTP_X_WEBHOOK_HMAC": good[:-2]},
    }


def _cloud_headers(body: bytes) -> dict[str, dict]:
    good = cloud_signature(APP_SECRET, body)
    return {
        "missing": {},
        "empty": {"HTTP_X_HUB_SIGNATURE_256": ""},
        "forged": {"HTTP_X_HUB_SIGNATURE_256": cloud_signature("wrong", body)},
        "for another body": {"HTTP_X_HUB_SIGNATURE_256": cloud_signature(APP_SECRET, body + b" ")},
        "without its prefix": {"HTTP_X_HUB_SIGNATURE_256": good.removeprefix("sha256=")},
        "truncated": {"HTTP_X_HUB_SIGNATURE_256": good[:-2]},
    }


def test_forged_or_missing_signatures_on_every_intake_are_401_and_change_nothing(platform, cloud_tenant):
    waha_body = session_status(platform.session.name, "FAILED")
    cloud_body = cloud_delivery(messages=[cloud_text("wamid.FORGED")])
    answers = {}
    for name, headers in _waha_headers(platform, waha_body).items():
        answers["waha " + name] = Client().post(f"/hooks/waha/{platform.slot.pk}/", data=waha_body,
                                                content_type="application/json", **headers).status_code
    for name, headers in _cloud_headers(cloud_body).items():
        answers["cloud " + name] = Client().post("/hooks/cloud/", data=cloud_body, content_type="application/json",
                                                 **headers).status_code
    answers["waha deep, unsigned"] = Client().post(f"/hooks/waha/{platform.slot.pk}/", data=DEEP,
                                                   content_type="application/json").status_code

    assert answers == {name: 401 for name in answers}
    assert session_status_now(platform) == "WORKING"
    assert not Message.objects.exists()
