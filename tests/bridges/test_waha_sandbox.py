"""The WAHA adapter against a real sandbox worker process, webhooks to a real HTTP receiver."""

from __future__ import annotations

import io
import signal
from collections.abc import Callable

import httpx
import pytest

from pooling.bridges.base import (
    BridgeEvent,
    InvalidSignature,
    OutboundMessage,
    PermanentBridgeError,
    SessionInfo,
    SlotFullError,
    TransientBridgeError,
    get_bridge,
)
from pooling.bridges.sandbox.webhooks import retry_delays
from pooling.bridges.waha import WahaBridge
from tests.bridges.conftest import Delivery, SandboxWorker, WebhookReceiver
from tests.waiting import wait_until
from waplatform.embedded_redis import free_port

pytestmark = pytest.mark.integration

HOOK_SECRET = "hook-secret-for-s1"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def bridge_for(worker: SandboxWorker, timeout: float = 5.0) -> WahaBridge:
    bridge = get_bridge("sandbox", base_url=worker.base_url, api_key=worker.api_key, timeout=timeout)
    assert isinstance(bridge, WahaBridge)
    return bridge


def wait_status(bridge: WahaBridge, name: str, status: str, timeout: float = 5.0) -> SessionInfo:
    return wait_until(lambda: (info := bridge.get_session(name)).status == status and info, timeout=timeout,
                      message=f"session {name} to be {status}")


def parsed(delivery: Delivery, secret: str = HOOK_SECRET) -> BridgeEvent:
    [event] = WahaBridge.parse_webhook(delivery.body, delivery.headers, secret)
    return event


def is_event(name: str, **payload: object) -> Callable[[Delivery], bool]:
    def match(delivery: Delivery) -> bool:
        body = delivery.json()
        return body.get("event") == name and all(body["payload"].get(k) == v for k, v in payload.items())

    return match


def working_session(bridge: WahaBridge, receiver: WebhookReceiver, name: str = "s1") -> SessionInfo:
    bridge.start_session(name, webhook_url=receiver.url, webhook_secret=HOOK_SECRET, metadata={"tenant.id": "42"})
    return wait_status(bridge, name, "WORKING")


def test_qr_login_flow(spawn_sandbox: Callable[..., SandboxWorker], webhook_receiver: WebhookReceiver) -> None:
    worker = spawn_sandbox(auto_scan_seconds=0)  # only an explicit scan logs in
    bridge = bridge_for(worker)

    started = bridge.start_session("s1", webhook_url=webhook_receiver.url, webhook_secret=HOOK_SECRET)
    wait_status(bridge, "s1", "SCAN_QR_CODE")
    qr = bridge.get_qr("s1")

    assert started.status == "STARTING"
    assert qr.png.startswith(PNG_MAGIC)
    raw = httpx.get(f"{worker.base_url}/api/s1/auth/qr", params={"format": "raw"},
                    headers={"X-Api-Key": worker.api_key}).json()
    assert qr.value == raw["value"] and qr.value
    assert_png_encodes(qr.png, qr.value)
    as_json = httpx.get(f"{worker.base_url}/api/s1/auth/qr",
                        headers={"X-Api-Key": worker.api_key, "Accept": "application/json"}).json()
    assert as_json["mimetype"] == "image/png" and as_json["data"]

    assert worker.control("POST", "/sandbox/scan", json={"session": "s1"}).status_code == 200
    info = wait_status(bridge, "s1", "WORKING")
    assert info.me and info.me["id"].endswith("@c.us") and "Sandbox" in info.me["pushName"]
    # Each webhook is its own POST, so order by the envelope's timestamp, not by arrival.
    events = sorted((parsed(d) for d in webhook_receiver.wait_for(3, is_event("session.status"))),
                    key=lambda e: e.timestamp)
    assert [e.status for e in events] == ["STARTING", "SCAN_QR_CODE", "WORKING"]
    with pytest.raises(PermanentBridgeError):
        bridge.get_qr("s1")  # no QR once logged in


def assert_png_encodes(png: bytes, value: str) -> None:
    """No QR decoder is installed; re-encoding the value must give the very same pixels."""
    import qrcode
    from PIL import Image, ImageChops

    buffer = io.BytesIO()
    qrcode.make(value, box_size=6, border=4).save(buffer, format="PNG")
    served = Image.open(io.BytesIO(png)).convert("1")
    expected = Image.open(io.BytesIO(buffer.getvalue())).convert("1")
    assert served.size == expected.size
    assert ImageChops.difference(served, expected).getbbox() is None


def test_pairing_code_then_auto_scan(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    bridge = bridge_for(sandbox)
    bridge.start_session("s1", webhook_url=webhook_receiver.url, webhook_secret=HOOK_SECRET)
    wait_status(bridge, "s1", "SCAN_QR_CODE")

    code = bridge.request_pairing_code("s1", "+1 213 213 2130")

    assert len(code) == 9 and code[4] == "-"
    wait_status(bridge, "s1", "WORKING")


def test_start_session_is_idempotent(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    bridge = bridge_for(sandbox)
    working_session(bridge, webhook_receiver)

    again = bridge.start_session("s1", webhook_url=webhook_receiver.url, webhook_secret=HOOK_SECRET)
    bridge.stop_session("s1")
    restarted = bridge.start_session("s1", webhook_url=webhook_receiver.url, webhook_secret=HOOK_SECRET)

    assert again.status == "WORKING"
    assert restarted.status == "STARTING"
    wait_status(bridge, "s1", "WORKING")  # still logged in: no QR this time
    bridge.logout_session("s1")
    assert bridge.get_session("s1").status == "STOPPED"
    bridge.delete_session("s1")
    assert sandbox.control("GET", "/sandbox/status").json()["sessions"] == []


SENDS = [
    OutboundMessage(to="15557654321", type="text", text="hello"),
    OutboundMessage(to="15557654321", type="image", media_url="https://example.test/cat.jpg", caption="cat"),
    OutboundMessage(to="15557654321", type="document", media_url="https://example.test/r.pdf", filename="r.pdf"),
    OutboundMessage(to="15557654321", type="audio", media_url="https://example.test/v.ogg"),
    OutboundMessage(to="15557654321", type="video", media_url="https://example.test/v.mp4"),
    OutboundMessage(to="15557654321", type="location", latitude=52.37, longitude=4.89, location_name="Dam"),
]


def test_every_send_type_then_signed_acks(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    bridge = bridge_for(sandbox)
    working_session(bridge, webhook_receiver)

    results = [bridge.send("s1", message) for message in SENDS]
    reaction = bridge.send("s1", OutboundMessage(to="15557654321", type="reaction",
                                                 reaction_to=results[0].provider_message_id, emoji="👍"))
    bridge.mark_seen("s1", "15557654321", [results[0].provider_message_id])

    ids = [r.provider_message_id for r in results]
    assert all(i.startswith("true_15557654321@c.us_") for i in ids) and len(set(ids)) == len(ids)
    assert reaction.provider_message_id
    acks = webhook_receiver.wait_for(3 * len(ids), is_event("message.ack"))
    events = [parsed(d) for d in acks]
    for message_id in ids:
        # Deliveries are independent POSTs and may overtake each other, as with real bridges.
        assert sorted(e.status for e in events if e.provider_message_id == message_id) == ["delivered", "read", "sent"]
    assert {e.chat_id for e in events} == {"15557654321"}
    first = acks[0].headers
    assert first["x-webhook-hmac-algorithm"] == "sha512"
    assert first["x-webhook-request-id"] and first["x-webhook-timestamp"].isdigit()
    with pytest.raises(InvalidSignature):
        WahaBridge.parse_webhook(acks[0].body, acks[0].headers, "wrong-secret")
    with pytest.raises(InvalidSignature):
        WahaBridge.parse_webhook(acks[0].body, {**acks[0].headers, "x-webhook-hmac": "0" * 128}, HOOK_SECRET)


def test_template_is_refused_for_waha(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    bridge = bridge_for(sandbox)
    working_session(bridge, webhook_receiver)

    with pytest.raises(PermanentBridgeError, match="template"):
        bridge.send("s1", OutboundMessage(to="15557654321", type="template", template={"name": "x"}))


def test_inbound_injection_and_echo_contacts(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    bridge = bridge_for(sandbox)
    working_session(bridge, webhook_receiver)

    injected = sandbox.control("POST", "/sandbox/inbound",
                               json={"session": "s1", "from": "15551234567", "text": "hi", "name": "Alice"}).json()
    bridge.send("s1", OutboundMessage(to="15550001111", type="text", text="ping"))

    inbound = [parsed(d) for d in webhook_receiver.wait_for(2, is_event("message"))]
    alice = next(e for e in inbound if e.chat_id == "15551234567")
    echo = next(e for e in inbound if e.chat_id == "15550001111")
    assert (alice.provider_message_id, alice.text, alice.contact_name, alice.from_me) == (injected["id"], "hi", "Alice", False)
    assert echo.text == "Sandbox echo: ping"


def test_the_sandbox_lists_every_send_it_accepted_to_a_keyed_caller(sandbox: SandboxWorker,
                                                                     webhook_receiver: WebhookReceiver) -> None:
    bridge = bridge_for(sandbox)
    working_session(bridge, webhook_receiver)
    first = bridge.send("s1", OutboundMessage(to="15557654321", type="text", text="one"))
    second = bridge.send("s1", OutboundMessage(to="15557654321", type="text", text="one"))  # the same text twice

    listed = sandbox.control("GET", "/sandbox/sent").json()
    assert [(s["id"], s["session"], s["to"], s["text"]) for s in listed] == [
        (first.provider_message_id, "s1", "15557654321@c.us", "one"),
        (second.provider_message_id, "s1", "15557654321@c.us", "one")]
    assert [s["id"] for s in sandbox.control("GET", "/sandbox/sent", params={"after": 1}).json()] == [
        second.provider_message_id]
    assert httpx.get(sandbox.base_url + "/sandbox/sent", timeout=5).status_code == 401


def test_capacity_refusal_is_slot_full(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    bridge = bridge_for(sandbox)
    for name in ("a", "b", "c"):
        bridge.start_session(name, webhook_url=webhook_receiver.url, webhook_secret=HOOK_SECRET)

    with pytest.raises(SlotFullError, match="full"):
        bridge.start_session("d", webhook_url=webhook_receiver.url, webhook_secret=HOOK_SECRET)
    bridge.delete_session("a")
    assert bridge.start_session("d", webhook_url=webhook_receiver.url, webhook_secret=HOOK_SECRET).name == "d"


def test_wrong_api_key_is_refused(sandbox: SandboxWorker) -> None:
    bridge = get_bridge("sandbox", base_url=sandbox.base_url, api_key="wrong")

    with pytest.raises(PermanentBridgeError) as caught:
        bridge.get_session("s1")
    assert caught.value.http_status == 401


def test_webhook_delivery_retries(sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    webhook_receiver.fail_next = 2

    bridge_for(sandbox).start_session("s1", webhook_url=webhook_receiver.url, webhook_secret=HOOK_SECRET)

    # The platform's retries config (exponential from 2 s): the refused deliveries come 2 s and 4 s later.
    statuses = {parsed(d).status for d in webhook_receiver.wait_for(3, is_event("session.status"), timeout=30)}
    assert statuses == {"STARTING", "SCAN_QR_CODE", "WORKING"}  # the two refused deliveries came again


def test_webhooks_follow_the_sessions_retry_config_through_an_outage_of_the_receiver(
        sandbox: SandboxWorker, webhook_receiver: WebhookReceiver) -> None:
    # Longer down than a few quick retries cover (the platform's web process restarting):
    # the session's `retries` config, as WAHA honours it, decides how long events wait.
    webhook_receiver.fail_next = 12
    bridge = get_bridge("sandbox", base_url=sandbox.base_url, api_key=sandbox.api_key,
                        webhook_retries={"policy": "constant", "delaySeconds": 0.2, "attempts": 20})

    bridge.start_session("s1", webhook_url=webhook_receiver.url, webhook_secret=HOOK_SECRET)

    statuses = {parsed(d).status for d in webhook_receiver.wait_for(3, is_event("session.status"), timeout=20)}
    assert statuses == {"STARTING", "SCAN_QR_CODE", "WORKING"}


def test_a_stopping_worker_drops_retries_that_wait_instead_of_outliving_its_stop_budget(
        spawn_sandbox: Callable[..., SandboxWorker]) -> None:
    # The platform's web process is gone (the launcher's late bridge stop): every delivery
    # fails and waits for a retry. SIGTERM must not wait for those retries (minutes with
    # the platform's config): the launcher kills a bridge still running after 1-3 s.
    worker = spawn_sandbox()
    dead_url = f"http://127.0.0.1:{free_port()}/hooks/waha/1/"
    bridge_for(worker).start_session("s1", webhook_url=dead_url, webhook_secret=HOOK_SECRET)
    wait_status(bridge_for(worker), "s1", "WORKING")

    worker.process.send_signal(signal.SIGTERM)

    worker.process.wait(timeout=3)  # uvicorn exits by re-raising the signal: -15 after a graceful stop
    assert "dropped at shutdown" in worker.process.stderr.read().decode()


@pytest.mark.parametrize(("retries", "delays"), [
    ({"policy": "constant", "delaySeconds": 2, "attempts": 4}, [2, 2, 2]),
    ({"policy": "linear", "delaySeconds": 2, "attempts": 4}, [2, 4, 6]),
    ({"policy": "exponential", "delaySeconds": 2, "attempts": 4}, [2, 4, 8]),
    ({"policy": "exponential", "delaySeconds": 100, "attempts": 4}, [100, 200, 300]),  # capped at 5 min
    (None, [2] * 14),  # WAHA's defaults
    ({"policy": "constant", "delaySeconds": "soon", "attempts": 2}, [2] * 14),  # unreadable: the defaults
])
def test_retry_delays_follow_wahas_policies(retries, delays) -> None:
    assert retry_delays(retries) == delays


# --- faults surface as typed errors ---------------------------------------------------------


def test_latency_beyond_timeout_is_transient(sandbox: SandboxWorker) -> None:
    sandbox.control("POST", "/sandbox/faults", json={"latency_ms": 700})

    with pytest.raises(TransientBridgeError):
        bridge_for(sandbox, timeout=0.3).ping()
    sandbox.control("DELETE", "/sandbox/faults")
    bridge_for(sandbox, timeout=0.3).ping()


@pytest.mark.parametrize(("status", "error"), [(503, TransientBridgeError), (400, PermanentBridgeError)])
def test_injected_errors_are_typed(sandbox: SandboxWorker, status: int, error: type[Exception]) -> None:
    bridge = bridge_for(sandbox)
    sandbox.control("POST", "/sandbox/faults", json={"error_status": status, "error_count": 2})

    for _ in range(2):
        with pytest.raises(error) as caught:
            bridge.ping()
        assert type(caught.value) is error and caught.value.http_status == status
    bridge.ping()  # the fault was used up


def test_crash_then_connection_refused_is_transient(sandbox: SandboxWorker) -> None:
    bridge = bridge_for(sandbox)

    answer = sandbox.control("POST", "/sandbox/faults", json={"crash": True})

    assert answer.status_code == 200
    assert sandbox.process.wait(timeout=5) == 1
    with pytest.raises(TransientBridgeError):
        bridge.ping()
