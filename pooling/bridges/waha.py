"""The WAHA HTTP API dialect (also spoken by the sandbox worker). See PROTOCOLS.md."""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from pooling.bridges._http import HttpClient, default_error, error_fields, response_json
from pooling.bridges.base import (
    Bridge,
    BridgeError,
    BridgeEvent,
    InvalidSignature,
    MediaSource,
    MalformedEvent,
    OutboundMessage,
    PermanentBridgeError,
    QrCode,
    SendResult,
    SessionInfo,
    SessionNotFound,
    SESSION_STATUSES,
    SlotFullError,
    checked,
    checked_str,
    checked_timestamp,
    lower_headers,
    register_dialect,
    same_origin,
)
from pooling.bridges.signatures import waha_signature_valid
from waplatform.json_limits import loads_limited

# `message`, never also `message.any`: both would deliver every inbound twice.
WEBHOOK_EVENTS = ["message", "message.ack", "session.status"]
DEFAULT_RETRIES = {"policy": "exponential", "delaySeconds": 2, "attempts": 10}

ACK_STATUS = {1: "sent", 2: "delivered", 3: "read", 4: "played", -1: "failed"}
ACK_NAME_STATUS = {"SERVER": "sent", "DEVICE": "delivered", "READ": "read", "PLAYED": "played", "ERROR": "failed"}

SEND_ENDPOINTS = {
    "image": "/api/sendImage",
    "document": "/api/sendFile",
    "audio": "/api/sendVoice",
    "video": "/api/sendVideo",
}
# WEBJS `_data.type` names for the types the platform knows by another name.
WEBJS_TYPES = {"chat": "text", "ptt": "audio", "vcard": "contacts", "multi_vcard": "contacts"}
_FULL_HINT = re.compile(r"full|capacity|limit|only .?default", re.IGNORECASE)


def chat_id_for(to: str) -> str:
    """Digits become a user chat id; anything already carrying a server part is kept."""
    if "@" in to:
        return to
    return re.sub(r"[^0-9]", "", to) + "@c.us"


def contact_from_chat_id(chat_id: str) -> str:
    # 1:1 chats become bare digits; groups, @lid and channels keep their full id.
    return chat_id[: -len("@c.us")] if chat_id.endswith("@c.us") else chat_id


def serialized_id(value: Any) -> str:
    """WAHA engines return ids as strings or as {"_serialized": ...} objects."""
    if isinstance(value, dict):
        return str(value.get("_serialized") or value.get("id") or "")
    return str(value or "")


def checked_id(value: Any, name: str, *, required: bool = False) -> str:
    """serialized_id of a signed payload's field, which must be a string or {"_serialized": string}."""
    if isinstance(value, dict):
        value = value.get("_serialized") if value.get("_serialized") is not None else value.get("id")
        name += "._serialized"
    return checked_str(value, name, required=required)


def _map_error(response: httpx.Response, path: str, body: dict) -> BridgeError:
    code, reason = error_fields(body)
    if response.status_code == 404:
        return SessionNotFound(reason or f"not found: {path}", code=code or 404, http_status=404)
    return default_error(response, path, body)


class WahaBridge(Bridge):
    dialect = "waha"

    def __init__(self, *, base_url: str, api_key: str, timeout: float = 10.0, **options: Any) -> None:
        transport = options.pop("transport", None)
        super().__init__(base_url=base_url, api_key=api_key, timeout=timeout, **options)
        self.http = HttpClient(
            base_url=self.base_url,
            headers={"X-Api-Key": api_key, "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            error_mapper=_map_error,
        )

    def close(self) -> None:
        self.http.close()

    # --- health and sessions -------------------------------------------------

    def ping(self) -> None:
        self.http.request("GET", "/ping")

    def start_session(
        self, name: str, *, webhook_url: str, webhook_secret: str, metadata: dict | None = None
    ) -> SessionInfo:
        body = {
            "name": name,
            "start": True,
            "config": {
                "metadata": metadata or {},
                "webhooks": [
                    {
                        "url": webhook_url,
                        "events": list(WEBHOOK_EVENTS),
                        "hmac": {"key": webhook_secret},
                        "retries": dict(self.options.get("webhook_retries", DEFAULT_RETRIES)),
                    }
                ],
            },
        }
        try:
            response = self.http.request("POST", "/api/sessions", json=body)
        except BridgeError as exc:
            # A worker at capacity answers 422 (or 429) to a new session: the allocator must pick another slot.
            if exc.http_status == 429 or (exc.http_status == 422 and _FULL_HINT.search(exc.reason)):
                raise SlotFullError(exc.reason, code=exc.code, http_status=exc.http_status) from exc
            if exc.transient:
                raise
            # Already there (409, or 422 on some WAHA versions): start it, which is idempotent.
            try:
                self.get_session(name)
            except SessionNotFound:
                raise exc from None
            response = self.http.request("POST", f"/api/sessions/{_seg(name)}/start")
        return _session_info(name, response_json(response))

    def get_session(self, name: str) -> SessionInfo:
        return _session_info(name, response_json(self.http.request("GET", f"/api/sessions/{_seg(name)}")))

    def list_sessions(self) -> list[SessionInfo]:
        rows = response_json(self.http.request("GET", "/api/sessions", params={"all": "true"})).get("data") or []
        return [_session_info(str(row.get("name", "")), row) for row in rows if isinstance(row, dict)]

    def stop_session(self, name: str) -> None:
        self.http.request("POST", f"/api/sessions/{_seg(name)}/stop")

    def logout_session(self, name: str) -> None:
        self.http.request("POST", f"/api/sessions/{_seg(name)}/logout")

    def delete_session(self, name: str) -> None:
        self.http.request("DELETE", f"/api/sessions/{_seg(name)}")

    def get_qr(self, name: str) -> QrCode:
        path = f"/api/{_seg(name)}/auth/qr"
        value = response_json(self.http.request("GET", path, params={"format": "raw"})).get("value", "")
        image = self.http.request("GET", path, headers={"Accept": "image/png"})
        if image.headers.get("content-type", "").startswith("image/"):
            png = image.content
        else:  # some WAHA versions answer JSON {mimetype, data} whatever Accept says
            png = base64.b64decode(response_json(image).get("data", ""))
        return QrCode(value=value, png=png)

    def request_pairing_code(self, name: str, phone_number: str) -> str:
        digits = re.sub(r"[^0-9]", "", phone_number)
        body = response_json(
            self.http.request("POST", f"/api/{_seg(name)}/auth/request-code", json={"phoneNumber": digits})
        )
        return str(body.get("code", ""))

    # --- messages ----------------------------------------------------------------

    def send(self, name: str, message: OutboundMessage) -> SendResult:
        method, path, body = _send_request(name, message)
        response = self.http.request(method, path, json=body)
        data = response_json(response)
        return SendResult(provider_message_id=serialized_id(data.get("id") or (data.get("key") or {}).get("id")), raw=data)

    def mark_seen(self, name: str, chat_id: str, message_ids: list[str]) -> None:
        body = {"session": name, "chatId": chat_id_for(chat_id), "messageIds": list(message_ids)}
        self.http.request("POST", "/api/sendSeen", json=body)

    def media_source(self, name: str, media: dict) -> MediaSource:
        """WAHA's `media.url` points at its own `/api/files/...`, under the host name WAHA was told
        it has (WHATSAPP_API_HOSTNAME), which is often not the name the platform reaches it by
        (localhost, a container name). Files it serves itself are fetched from the slot's base
        URL with the slot's key; a URL anywhere else (WAHA's S3 media storage) is a foreign
        host: no key goes there, and the platform fetches it through its egress guard."""
        url = str(media.get("url") or "")
        if not url:
            raise PermanentBridgeError("the bridge did not download this media (hasMedia without media.url)",
                                       code="media_unavailable")
        parts = urlsplit(url)
        common = {"content_type": str(media.get("mimetype") or ""), "filename": str(media.get("filename") or "")}
        if parts.path.startswith("/api/files/") or same_origin(url, self.base_url):
            local = self.base_url + parts.path + (f"?{parts.query}" if parts.query else "")
            return MediaSource(url=local, headers={"X-Api-Key": self.api_key}, on_bridge=True, **common)
        return MediaSource(url=url, on_bridge=False, **common)

    # --- webhooks ----------------------------------------------------------------

    @classmethod
    def parse_webhook(
        cls, raw_body: bytes, headers: Mapping[str, str], secret: str, *, max_depth: int = 32
    ) -> list[BridgeEvent]:
        lowered = lower_headers(headers)
        algorithm = lowered.get("x-webhook-hmac-algorithm", "sha512").lower()
        if algorithm != "sha512" or not waha_signature_valid(secret, raw_body, lowered.get("x-webhook-hmac")):
            raise InvalidSignature("bad or missing X-Webhook-Hmac")
        envelope = loads_limited(raw_body, max_depth=max_depth, max_bytes=len(raw_body))
        envelopes = envelope if isinstance(envelope, list) else [envelope]
        return [_checked_event(e) for e in envelopes]


def _seg(name: str) -> str:
    return quote(name, safe="")


def _session_info(name: str, data: dict) -> SessionInfo:
    me = data.get("me")
    return SessionInfo(name=data.get("name") or name, status=str(data.get("status") or ""), me=me or None, raw=data)


def _file_for(message: OutboundMessage) -> dict:
    filename = message.filename or urlsplit(message.media_url).path.rsplit("/", 1)[-1]
    if message.media_data is not None:
        file: dict[str, str] = {"data": base64.b64encode(message.media_data).decode()}
    else:
        file = {"url": message.media_url}
    mimetype = message.media_mimetype or mimetypes.guess_type(filename or message.media_url)[0]
    if mimetype:
        file["mimetype"] = mimetype
    if filename:
        file["filename"] = filename
    return file


def _send_request(name: str, message: OutboundMessage) -> tuple[str, str, dict]:
    chat = {"session": name, "chatId": chat_id_for(message.to)}
    if message.reply_to:
        chat["reply_to"] = message.reply_to
    kind = message.type
    if kind == "text":
        return "POST", "/api/sendText", {**chat, "text": message.text}
    if kind in SEND_ENDPOINTS:
        if not message.media_url and message.media_data is None:
            raise PermanentBridgeError(f"{kind} message needs media_url or media_data", code="invalid_message")
        body = {**chat, "file": _file_for(message)}
        if kind != "audio":  # voice notes carry no caption on WhatsApp
            body["caption"] = message.caption or message.text
        return "POST", SEND_ENDPOINTS[kind], body
    if kind == "location":
        if message.latitude is None or message.longitude is None:
            raise PermanentBridgeError("location message needs latitude and longitude", code="invalid_message")
        body = {**chat, "latitude": message.latitude, "longitude": message.longitude, "title": message.location_name}
        return "POST", "/api/sendLocation", body
    if kind == "reaction":
        return "PUT", "/api/reaction", {"session": name, "messageId": message.reaction_to, "reaction": message.emoji}
    if kind == "template":
        raise PermanentBridgeError(
            "template messages are a Cloud API feature; WAHA sessions cannot send them", code="unsupported_type"
        )
    raise PermanentBridgeError(f"unsupported message type {kind!r} for WAHA", code="unsupported_type")


def _message_type(payload: dict) -> str:
    data = payload.get("_data") if isinstance(payload.get("_data"), dict) else {}
    raw_type = payload.get("type") or data.get("type")
    if isinstance(raw_type, str) and raw_type:
        return WEBJS_TYPES.get(raw_type, raw_type)
    media = payload.get("media") if isinstance(payload.get("media"), dict) else {}
    mimetype = str(media.get("mimetype") or "")
    if payload.get("hasMedia"):
        major = mimetype.split("/", 1)[0]
        return major if major in ("image", "audio", "video") else "document"
    if payload.get("location"):
        return "location"
    return "text"


def _checked_event(envelope: Any) -> BridgeEvent:
    """The event of one envelope, or kind="invalid" with the first field that is not what WAHA sends."""
    if not isinstance(envelope, dict):
        return BridgeEvent(kind="invalid", session="", error_reason=f"an envelope is a {type(envelope).__name__}")
    try:
        return _event_from_envelope(envelope)
    except MalformedEvent as exc:
        session = envelope.get("session") if isinstance(envelope.get("session"), str) else ""
        return BridgeEvent(kind="invalid", session=session, error_reason=str(exc), raw=envelope)


def _event_from_envelope(envelope: dict) -> BridgeEvent:
    event = checked_str(envelope.get("event"), "event", required=True)
    session = checked_str(envelope.get("session"), "session", required=True)
    payload = checked(envelope.get("payload"), dict, "payload", default={})
    emitted_at = checked_timestamp(envelope.get("timestamp"), "timestamp")
    checked(envelope.get("me"), dict, "me")
    base: dict[str, Any] = {"session": session, "raw": envelope, "timestamp": emitted_at}

    if event in ("message", "message.any"):
        from_me = checked(payload.get("fromMe"), bool, "payload.fromMe", default=False)
        chat = checked_str(payload.get("to") if from_me else payload.get("from"),
                           "payload.to" if from_me else "payload.from", required=True)
        data = checked(payload.get("_data"), dict, "payload._data", default={})
        reply = payload.get("replyTo")
        reply = reply.get("id") if isinstance(reply, dict) else reply
        base["timestamp"] = checked_timestamp(payload.get("timestamp"), "payload.timestamp") or emitted_at
        media = checked(payload.get("media"), dict, "payload.media")
        checked(payload.get("hasMedia"), bool, "payload.hasMedia")
        name = data.get("notifyName") or data.get("pushName")
        return BridgeEvent(
            kind="message",
            provider_message_id=checked_id(payload.get("id"), "payload.id", required=True),
            chat_id=contact_from_chat_id(chat),
            contact_name=name if isinstance(name, str) else "",
            from_me=from_me,
            message_type=_message_type(payload),
            text=checked_str(payload.get("body"), "payload.body"),
            media=media or None,
            reply_to=checked_id(reply, "payload.replyTo"),
            emitted_at=emitted_at or base["timestamp"],
            **base,
        )
    if event == "message.ack":
        ack = payload.get("ack")
        if ack is not None and (isinstance(ack, bool) or not isinstance(ack, int)):
            raise MalformedEvent(f"payload.ack is a {type(ack).__name__}, not an integer")
        ack_name = checked_str(payload.get("ackName"), "payload.ackName")
        status = ACK_STATUS.get(ack) or ACK_NAME_STATUS.get(ack_name.upper(), "")
        if status:
            return BridgeEvent(
                kind="status",
                provider_message_id=checked_id(payload.get("id"), "payload.id", required=True),
                chat_id=contact_from_chat_id(checked_str(payload.get("from"), "payload.from")),
                from_me=checked(payload.get("fromMe"), bool, "payload.fromMe", default=True),
                status=status,
                error_reason=ack_name if status == "failed" else "",
                emitted_at=emitted_at,
                **base,
            )
        # PENDING (0) is not a delivery state the platform tracks; keep it visible as unknown.
    elif event == "session.status":
        status = checked_str(payload.get("status"), "payload.status", required=True, choices=SESSION_STATUSES)
        return BridgeEvent(kind="session", status=status, emitted_at=emitted_at, **base)
    return BridgeEvent(kind="unknown", provider_message_id=serialized_id(payload.get("id")), message_type=event,
                       emitted_at=emitted_at, **base)


# Sandbox workers speak WAHA for sessions, so a sandbox slot gets this adapter too.
register_dialect("waha", WahaBridge)
register_dialect("sandbox", WahaBridge)
