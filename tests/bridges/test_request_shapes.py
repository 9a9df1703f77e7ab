"""The adapters' requests match PROTOCOLS.md field by field.

httpx.MockTransport stands in for the outside world (a WAHA server, Meta's Graph
API); the adapters themselves run for real.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from pooling.bridges.base import (
    OutboundMessage,
    PermanentBridgeError,
    SessionNotFound,
    SlotFullError,
    TransientBridgeError,
    get_bridge,
)
from pooling.bridges.cloud import CloudBridge
from pooling.bridges.waha import WahaBridge


class Recorder:
    def __init__(self, answer: Callable[[httpx.Request], httpx.Response] | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.answer = answer or (lambda request: httpx.Response(200, json={"id": "true_1@c.us_AAA"}))

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answer(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self, index: int = -1) -> dict:
        return json.loads(self.requests[index].content)


def waha(recorder: Recorder) -> WahaBridge:
    return WahaBridge(base_url="http://waha.test/", api_key="secret-key", transport=httpx.MockTransport(recorder))


def cloud(recorder: Recorder, **options: object) -> CloudBridge:
    return CloudBridge(base_url="https://graph.test/v21.0", api_key="EAAG-token",
                       transport=httpx.MockTransport(recorder), **options)


# --- WAHA ----------------------------------------------------------------------------------


def test_waha_start_session_creates_with_webhook_config() -> None:
    recorder = Recorder(lambda r: httpx.Response(201, json={"name": "t42-n1", "status": "STARTING", "me": None}))

    info = waha(recorder).start_session("t42-n1", webhook_url="https://platform.test/hooks/waha/7/",
                                        webhook_secret="hook-secret", metadata={"tenant.id": "42"})

    request = recorder.last
    assert (request.method, request.url.path) == ("POST", "/api/sessions")
    assert request.headers["X-Api-Key"] == "secret-key"
    body = recorder.body()
    assert body["name"] == "t42-n1" and body["start"] is True
    assert body["config"]["metadata"] == {"tenant.id": "42"}
    [hook] = body["config"]["webhooks"]
    assert hook["url"] == "https://platform.test/hooks/waha/7/"
    assert hook["events"] == ["message", "message.ack", "session.status"]
    assert "message.any" not in hook["events"]
    assert hook["hmac"] == {"key": "hook-secret"}
    assert set(hook["retries"]) == {"policy", "delaySeconds", "attempts"}
    assert (info.name, info.status) == ("t42-n1", "STARTING")


def test_waha_start_session_that_exists_starts_it() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/sessions":
            return httpx.Response(409, json={"statusCode": 409, "message": "Session 's1' already exists"})
        if request.method == "GET":
            return httpx.Response(200, json={"name": "s1", "status": "STOPPED"})
        return httpx.Response(201, json={"name": "s1", "status": "STARTING"})

    recorder = Recorder(answer)

    info = waha(recorder).start_session("s1", webhook_url="http://h", webhook_secret="k")

    assert [(r.method, r.url.path) for r in recorder.requests] == [
        ("POST", "/api/sessions"), ("GET", "/api/sessions/s1"), ("POST", "/api/sessions/s1/start")]
    assert info.status == "STARTING"


def test_waha_full_worker_is_slot_full() -> None:
    recorder = Recorder(lambda r: httpx.Response(422, json={"statusCode": 422, "message": "Sandbox worker is full"}))

    with pytest.raises(SlotFullError):
        waha(recorder).start_session("s9", webhook_url="http://h", webhook_secret="k")


@pytest.mark.parametrize(
    ("call", "method", "path"),
    [
        (lambda b: b.get_session("s 1"), "GET", "/api/sessions/s%201"),
        (lambda b: b.stop_session("s1"), "POST", "/api/sessions/s1/stop"),
        (lambda b: b.logout_session("s1"), "POST", "/api/sessions/s1/logout"),
        (lambda b: b.delete_session("s1"), "DELETE", "/api/sessions/s1"),
        (lambda b: b.ping(), "GET", "/ping"),
    ],
)
def test_waha_session_calls(call: Callable[[WahaBridge], object], method: str, path: str) -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json={"name": "s1", "status": "WORKING"}))

    call(waha(recorder))

    assert (recorder.last.method, recorder.last.url.raw_path.decode()) == (method, path)
    assert recorder.last.headers["X-Api-Key"] == "secret-key"


def test_waha_qr_asks_raw_value_and_png() -> None:
    png = b"\x89PNG\r\n\x1a\nrest"

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("format") == "raw":
            return httpx.Response(200, json={"value": "2@abc"})
        return httpx.Response(200, content=png, headers={"content-type": "image/png"})

    recorder = Recorder(answer)

    qr = waha(recorder).get_qr("s1")

    assert (qr.value, qr.png) == ("2@abc", png)
    assert all(r.url.path == "/api/s1/auth/qr" for r in recorder.requests)
    assert recorder.requests[1].headers["Accept"] == "image/png"


def test_waha_pairing_code() -> None:
    recorder = Recorder(lambda r: httpx.Response(201, json={"code": "ABCD-EFGH"}))

    code = waha(recorder).request_pairing_code("s1", "+1 (213) 213-2130")

    assert code == "ABCD-EFGH"
    assert recorder.last.url.path == "/api/s1/auth/request-code"
    assert recorder.body() == {"phoneNumber": "12132132130"}


WAHA_SENDS = [
    (OutboundMessage(to="+12132132130", type="text", text="Hi there!", reply_to="false_1@c.us_AAA"),
     "POST", "/api/sendText",
     {"session": "s1", "chatId": "12132132130@c.us", "text": "Hi there!", "reply_to": "false_1@c.us_AAA"}),
    (OutboundMessage(to="12132132130", type="image", media_url="https://x.test/a/cat.jpg", caption="cat"),
     "POST", "/api/sendImage",
     {"session": "s1", "chatId": "12132132130@c.us", "caption": "cat",
      "file": {"url": "https://x.test/a/cat.jpg", "mimetype": "image/jpeg", "filename": "cat.jpg"}}),
    (OutboundMessage(to="12132132130", type="document", media_url="https://x.test/f", filename="report.pdf"),
     "POST", "/api/sendFile",
     {"session": "s1", "chatId": "12132132130@c.us", "caption": "",
      "file": {"url": "https://x.test/f", "mimetype": "application/pdf", "filename": "report.pdf"}}),
    (OutboundMessage(to="12132132130", type="audio", media_url="https://x.test/v.ogg"),
     "POST", "/api/sendVoice",
     {"session": "s1", "chatId": "12132132130@c.us",
      "file": {"url": "https://x.test/v.ogg", "mimetype": "audio/ogg", "filename": "v.ogg"}}),
    (OutboundMessage(to="12132132130", type="video", media_url="https://x.test/v.mp4", caption="clip"),
     "POST", "/api/sendVideo",
     {"session": "s1", "chatId": "12132132130@c.us", "caption": "clip",
      "file": {"url": "https://x.test/v.mp4", "mimetype": "video/mp4", "filename": "v.mp4"}}),
    (OutboundMessage(to="12132132130", type="location", latitude=38.89, longitude=-77.03, location_name="Office"),
     "POST", "/api/sendLocation",
     {"session": "s1", "chatId": "12132132130@c.us", "latitude": 38.89, "longitude": -77.03, "title": "Office"}),
    (OutboundMessage(to="12132132130", type="reaction", reaction_to="false_1@c.us_AAA", emoji="👍"),
     "PUT", "/api/reaction",
     {"session": "s1", "messageId": "false_1@c.us_AAA", "reaction": "👍"}),
    (OutboundMessage(to="120363@g.us", type="text", text="group hello"),
     "POST", "/api/sendText", {"session": "s1", "chatId": "120363@g.us", "text": "group hello"}),
]


@pytest.mark.parametrize(("message", "method", "path", "body"), WAHA_SENDS, ids=lambda v: getattr(v, "type", None))
def test_waha_send_bodies(message: OutboundMessage, method: str, path: str, body: dict) -> None:
    recorder = Recorder()

    result = waha(recorder).send("s1", message)

    assert (recorder.last.method, recorder.last.url.path) == (method, path)
    assert recorder.body() == body
    assert result.provider_message_id == "true_1@c.us_AAA"


def test_waha_send_accepts_serialized_id_objects() -> None:
    recorder = Recorder(lambda r: httpx.Response(201, json={"id": {"_serialized": "true_9@c.us_X", "fromMe": True}}))

    assert waha(recorder).send("s1", OutboundMessage(to="9", type="text", text="x")).provider_message_id == "true_9@c.us_X"


def test_waha_refuses_templates_without_calling_out() -> None:
    recorder = Recorder()

    with pytest.raises(PermanentBridgeError, match="template"):
        waha(recorder).send("s1", OutboundMessage(to="1", type="template", template={"name": "x"}))
    assert recorder.requests == []


def test_waha_mark_seen() -> None:
    recorder = Recorder(lambda r: httpx.Response(201, json={}))

    waha(recorder).mark_seen("s1", "12132132130", ["false_1@c.us_A", "false_1@c.us_B"])

    assert recorder.last.url.path == "/api/sendSeen"
    assert recorder.body() == {"session": "s1", "chatId": "12132132130@c.us",
                               "messageIds": ["false_1@c.us_A", "false_1@c.us_B"]}


@pytest.mark.parametrize(
    ("status", "error"),
    [(500, TransientBridgeError), (503, TransientBridgeError), (429, SlotFullError),
     (400, PermanentBridgeError), (404, SessionNotFound), (401, PermanentBridgeError)],
)
def test_waha_http_errors_are_typed(status: int, error: type[Exception]) -> None:
    recorder = Recorder(lambda r: httpx.Response(status, json={"statusCode": status, "message": "nope"}))
    bridge = waha(recorder)

    with pytest.raises(error) as caught:
        bridge.start_session("s1", webhook_url="http://h", webhook_secret="k") if status == 429 else bridge.get_session("s1")
    assert caught.value.reason == "nope"
    assert caught.value.http_status == status


def test_get_bridge_registry() -> None:
    assert isinstance(get_bridge("waha", base_url="http://x", api_key="k"), WahaBridge)
    assert isinstance(get_bridge("sandbox", base_url="http://x", api_key="k"), WahaBridge)
    assert isinstance(get_bridge("cloud", base_url="http://x", api_key="k"), CloudBridge)
    with pytest.raises(ValueError):
        get_bridge("telegram", base_url="http://x", api_key="k")


# --- Cloud API ----------------------------------------------------------------------------

SENT = {"messaging_product": "whatsapp", "contacts": [{"input": "16505551234", "wa_id": "16505551234"}],
        "messages": [{"id": "wamid.HBgL"}]}
ENVELOPE = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234"}
CLOUD_SENDS = [
    (OutboundMessage(to="+1 650 555 1234", type="text", text="Hello", reply_to="wamid.prev",
                     correlation="tenant:42|job:9001"),
     {**ENVELOPE, "type": "text", "text": {"preview_url": False, "body": "Hello"},
      "context": {"message_id": "wamid.prev"}, "biz_opaque_callback_data": "tenant:42|job:9001"}),
    (OutboundMessage(to="16505551234", type="image", media_url="https://x.test/cat.jpg", caption="cat"),
     {**ENVELOPE, "type": "image", "image": {"link": "https://x.test/cat.jpg", "caption": "cat"}}),
    (OutboundMessage(to="16505551234", type="document", media_url="https://x.test/r", filename="r.pdf", caption="r"),
     {**ENVELOPE, "type": "document", "document": {"link": "https://x.test/r", "caption": "r", "filename": "r.pdf"}}),
    (OutboundMessage(to="16505551234", type="audio", media_url="https://x.test/v.ogg", caption="ignored"),
     {**ENVELOPE, "type": "audio", "audio": {"link": "https://x.test/v.ogg"}}),
    (OutboundMessage(to="16505551234", type="video", media_url="https://x.test/v.mp4"),
     {**ENVELOPE, "type": "video", "video": {"link": "https://x.test/v.mp4"}}),
    (OutboundMessage(to="16505551234", type="location", latitude=1.5, longitude=2.5, location_name="HQ"),
     {**ENVELOPE, "type": "location", "location": {"latitude": 1.5, "longitude": 2.5, "name": "HQ"}}),
    (OutboundMessage(to="16505551234", type="reaction", reaction_to="wamid.x", emoji=""),
     {**ENVELOPE, "type": "reaction", "reaction": {"message_id": "wamid.x", "emoji": ""}}),
    (OutboundMessage(to="16505551234", type="template",
                     template={"name": "order_update", "language": {"code": "en_US"},
                               "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]}),
     {**ENVELOPE, "type": "template",
      "template": {"name": "order_update", "language": {"code": "en_US"},
                   "components": [{"type": "body", "parameters": [{"type": "text", "text": "42"}]}]}}),
]


@pytest.mark.parametrize(("message", "body"), CLOUD_SENDS, ids=lambda v: getattr(v, "type", None))
def test_cloud_send_bodies(message: OutboundMessage, body: dict) -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json=SENT))

    result = cloud(recorder).send("106540352242922", message)

    request = recorder.last
    assert (request.method, request.url.path) == ("POST", "/v21.0/106540352242922/messages")
    assert request.headers["Authorization"] == "Bearer EAAG-token"
    assert recorder.body() == body
    assert result.provider_message_id == "wamid.HBgL"


def test_cloud_mark_seen_is_a_read_status() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json={"success": True}))

    cloud(recorder).mark_seen("106540352242922", "16505551234", ["wamid.a"])

    assert recorder.last.url.path == "/v21.0/106540352242922/messages"
    assert recorder.body() == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.a"}


def test_cloud_start_session_against_meta_only_reads_the_number() -> None:
    number = {"id": "106540352242922", "display_phone_number": "+1 555-078-3881", "verified_name": "Acme"}
    recorder = Recorder(lambda r: httpx.Response(200, json=number))

    info = cloud(recorder).start_session("106540352242922", webhook_url="https://p/hooks/cloud/", webhook_secret="s")

    assert [(r.method, r.url.path) for r in recorder.requests] == [("GET", "/v21.0/106540352242922")]
    assert (info.status, info.me) == ("WORKING", {"id": "15550783881", "pushName": "Acme"})


def test_cloud_start_session_on_sandbox_registers_first() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json={"id": "1", "display_phone_number": "1"}))

    cloud(recorder, sandbox=True).start_session("1", webhook_url="http://h/", webhook_secret="app-secret")

    assert [(r.method, r.url.path) for r in recorder.requests] == [
        ("POST", "/v21.0/sandbox/cloud/numbers"), ("GET", "/v21.0/1")]
    assert recorder.body(0) == {"phone_number_id": "1", "access_token": "EAAG-token", "app_secret": "app-secret",
                                "webhook_url": "http://h/", "metadata": {}}


def test_cloud_has_no_qr() -> None:
    recorder = Recorder()

    with pytest.raises(PermanentBridgeError, match="no QR"):
        cloud(recorder).get_qr("1")
    with pytest.raises(PermanentBridgeError, match="no QR"):
        cloud(recorder).request_pairing_code("1", "123")
    assert recorder.requests == []


def graph_error(status: int, code: int, subcode: int | None = None) -> Callable[[httpx.Request], httpx.Response]:
    error = {"message": f"error {code}", "type": "OAuthException", "code": code, "error_data": {"details": "why"}}
    if subcode:
        error["error_subcode"] = subcode
    return lambda request: httpx.Response(status, json={"error": error})


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(400, 130429, TransientBridgeError), (400, 131056, TransientBridgeError), (429, 130429, TransientBridgeError),
     (400, 131048, PermanentBridgeError), (400, 131047, PermanentBridgeError), (400, 131026, PermanentBridgeError),
     (400, 132001, PermanentBridgeError), (500, 1, TransientBridgeError), (503, 2, TransientBridgeError)],
)
def test_cloud_error_codes(status: int, code: int, error: type[Exception]) -> None:
    recorder = Recorder(graph_error(status, code))

    with pytest.raises(error) as caught:
        cloud(recorder).send("1", OutboundMessage(to="16505551234", type="text", text="x"))
    assert caught.value.code == str(code)
    assert caught.value.reason == f"error {code}: why"
    assert type(caught.value) is error


def test_cloud_get_session_failed_on_expired_token() -> None:
    info = cloud(Recorder(graph_error(401, 190))).get_session("1")

    assert info.status == "FAILED"


def test_cloud_get_session_unknown_number() -> None:
    with pytest.raises(SessionNotFound):
        cloud(Recorder(graph_error(400, 100, subcode=33))).get_session("1")


def test_timeouts_and_refusals_are_transient() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def refused(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(TransientBridgeError):
        waha(Recorder(timeout)).ping()
    with pytest.raises(TransientBridgeError):
        cloud(Recorder(refused)).send("1", OutboundMessage(to="1", type="text", text="x"))


def test_waha_list_sessions_asks_for_all_sessions_in_one_call() -> None:
    recorder = Recorder(lambda r: httpx.Response(200, json=[
        {"name": "t1", "status": "WORKING", "me": {"id": "1@c.us"}}, {"name": "t2", "status": "STOPPED"}]))

    sessions = waha(recorder).list_sessions()

    request = recorder.last
    assert (request.method, request.url.path, request.url.params["all"]) == ("GET", "/api/sessions", "true")
    assert [(s.name, s.status) for s in sessions] == [("t1", "WORKING"), ("t2", "STOPPED")]
