"""Meta's WhatsApp Cloud API dialect. See PROTOCOLS.md.

The "session" is the phone_number_id and api_key is the bearer access token.
There is no QR and nothing to start: the number either answers on Graph or not.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import httpx

from pooling.bridges._http import HttpClient, error_fields, response_json
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
    SlotFullError,
    MESSAGE_STATUSES,
    TransientBridgeError,
    checked,
    checked_str,
    checked_timestamp,
    lower_headers,
    register_dialect,
    same_origin,
)
from pooling.bridges.signatures import cloud_signature_valid
from waplatform.json_limits import loads_limited

DEFAULT_BASE_URL = "https://graph.facebook.com/v21.0"

# Rate limits (throughput, per-pair, API-call) and "service temporarily unavailable"
# clear up by themselves; everything else needs a human or a different message.
TRANSIENT_CODES = frozenset({"130429", "131056", "4", "80007", "2"})
# A spam rate limit (131048) is not cleared by waiting: the tenant must be paused.
PERMANENT_RATE_CODES = frozenset({"131048"})
EXPIRED_TOKEN_CODE = "190"
MEDIA_TYPES = ("image", "document", "audio", "video")


def _map_error(response: httpx.Response, path: str, body: dict) -> BridgeError:
    code, reason = error_fields(body)
    status = response.status_code
    reason = reason or f"HTTP {status} from {path}"
    throttled = status in (408, 429) and code not in PERMANENT_RATE_CODES
    if code in TRANSIENT_CODES or status >= 500 or throttled:
        return TransientBridgeError(reason, code=code or status, http_status=status)
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    if code == "100" and str(error.get("error_subcode")) == "33":  # "object does not exist"
        return SessionNotFound(reason, code=code, http_status=status)
    if status == 404:
        return SessionNotFound(reason, code=code or status, http_status=status)
    return PermanentBridgeError(reason, code=code or status, http_status=status)


def digits(value: str) -> str:
    if value.endswith("@c.us"):
        value = value[: -len("@c.us")]
    return re.sub(r"[^0-9]", "", value)


class CloudBridge(Bridge):
    dialect = "cloud"

    def __init__(self, *, base_url: str = DEFAULT_BASE_URL, api_key: str, timeout: float = 10.0, **options: Any) -> None:
        transport = options.pop("transport", None)
        super().__init__(base_url=base_url, api_key=api_key, timeout=timeout, **options)
        # Only a sandbox worker understands /sandbox/* paths; never send them to Meta.
        self.sandbox = bool(options.get("sandbox", False))
        self.phone_number_id = str(options.get("phone_number_id", ""))
        self.http = HttpClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout,
            transport=transport,
            error_mapper=_map_error,
        )

    def close(self) -> None:
        self.http.close()

    def ping(self) -> None:
        self.http.request("GET", f"/{_seg(self.phone_number_id)}" if self.phone_number_id else "/me")

    def start_session(
        self, name: str, *, webhook_url: str, webhook_secret: str, metadata: dict | None = None
    ) -> SessionInfo:
        if self.sandbox:
            body = {"phone_number_id": name, "access_token": self.api_key, "app_secret": webhook_secret,
                    "webhook_url": webhook_url, "metadata": metadata or {}}
            try:
                self.http.request("POST", "/sandbox/cloud/numbers", json=body)
            except PermanentBridgeError as exc:
                if exc.http_status in (422, 429):
                    raise SlotFullError(exc.reason, code=exc.code, http_status=exc.http_status) from exc
                raise
        # Real Meta: the webhook is configured in Meta's dashboard, so only check the number.
        return self.get_session(name)

    def get_session(self, name: str) -> SessionInfo:
        try:
            data = response_json(self.http.request("GET", f"/{_seg(name)}"))
        except PermanentBridgeError as exc:
            if exc.http_status == 401 or exc.code == EXPIRED_TOKEN_CODE:
                return SessionInfo(name=name, status="FAILED", raw={"error": {"code": exc.code, "message": exc.reason}})
            raise
        me = {"id": digits(str(data.get("display_phone_number", ""))), "pushName": data.get("verified_name", "")}
        return SessionInfo(name=name, status="WORKING", me=me, raw=data)

    def stop_session(self, name: str) -> None:
        """Nothing runs on our side for a Cloud number; stopping is a no-op."""

    def logout_session(self, name: str) -> None:
        """Cloud numbers have no login to wipe; deregistering is an operator act in Meta's tools."""

    def delete_session(self, name: str) -> None:
        if self.sandbox:  # frees the sandbox worker's capacity
            self.http.request("DELETE", f"/sandbox/cloud/numbers/{_seg(name)}")

    def get_qr(self, name: str) -> QrCode:
        raise PermanentBridgeError("Cloud API numbers have no QR", code="unsupported")

    def request_pairing_code(self, name: str, phone_number: str) -> str:
        raise PermanentBridgeError("Cloud API numbers have no QR", code="unsupported")

    def send(self, name: str, message: OutboundMessage) -> SendResult:
        data = response_json(self.http.request("POST", f"/{_seg(name)}/messages", json=message_body(message)))
        messages = data.get("messages") or [{}]
        return SendResult(provider_message_id=str(messages[0].get("id", "")), raw=data)

    def mark_seen(self, name: str, chat_id: str, message_ids: list[str]) -> None:
        for message_id in message_ids:
            body = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
            self.http.request("POST", f"/{_seg(name)}/messages", json=body)

    # --- media -------------------------------------------------------------------

    def media_source(self, name: str, media: dict) -> MediaSource:
        """Graph's `GET /{media-id}` gives a short-lived URL (minutes) to fetch with the same token.

        On Meta that URL is on lookaside.fbsbx.com, not the Graph host: it is not
        `on_bridge`, so the platform fetches it through its egress guard.
        """
        media_id = str(media.get("id") or "")
        if not media_id:
            raise PermanentBridgeError("the inbound media carries no id", code="invalid_media")
        data = response_json(self.http.request("GET", f"/{_seg(media_id)}", params={"phone_number_id": name}))
        url = str(data.get("url") or "")
        if not url:
            raise PermanentBridgeError(f"Graph gave no URL for media {media_id}", code="invalid_media")
        size = data.get("file_size")
        return MediaSource(
            url=url, headers={"Authorization": f"Bearer {self.api_key}"}, on_bridge=same_origin(url, self.base_url),
            content_type=str(data.get("mime_type") or media.get("mime_type") or ""),
            filename=str(media.get("filename") or ""), size=int(size) if str(size or "").isdigit() else None,
            sha256=str(data.get("sha256") or media.get("sha256") or ""),
        )

    def upload_media(self, name: str, data: bytes, *, content_type: str, filename: str) -> str:
        """`POST /{phone_number_id}/media` (multipart), as Meta documents; the id is then sent in place of a link."""
        form = {"messaging_product": "whatsapp", "type": content_type}
        files = {"file": (filename or "file", data, content_type)}
        answer = response_json(self.http.request("POST", f"/{_seg(name)}/media", data=form, files=files))
        media_id = str(answer.get("id") or "")
        if not media_id:
            raise PermanentBridgeError("the media upload answered no id", code="invalid_media")
        return media_id

    # --- webhooks ----------------------------------------------------------------

    @classmethod
    def verify_subscription(cls, params: Mapping[str, str], verify_token: str) -> str | None:
        """The hub.challenge to echo back as text/plain, or None to answer 403."""
        given = params.get("hub.verify_token") or ""
        if not verify_token or params.get("hub.mode") != "subscribe" or not given:
            return None
        if not hmac.compare_digest(given.encode(), verify_token.encode()):
            return None
        challenge = params.get("hub.challenge")
        return str(challenge) if challenge is not None else None

    @classmethod
    def parse_webhook(
        cls, raw_body: bytes, headers: Mapping[str, str], secret: str, *, max_depth: int = 32
    ) -> list[BridgeEvent]:
        if not cloud_signature_valid(secret, raw_body, lower_headers(headers).get("x-hub-signature-256")):
            raise InvalidSignature("bad or missing X-Hub-Signature-256")
        delivery = loads_limited(raw_body, max_depth=max_depth, max_bytes=len(raw_body))
        if not isinstance(delivery, dict):
            return [BridgeEvent(kind="invalid", session="", error_reason=f"the delivery is a {type(delivery).__name__}")]
        return list(_events(delivery))


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def message_body(message: OutboundMessage) -> dict:
    kind = message.type
    body: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": digits(message.to),
        "type": kind,
    }
    if kind == "text":
        body["text"] = {"preview_url": False, "body": message.text}
    elif kind in MEDIA_TYPES:
        if not (message.media_url or message.media_id):
            raise PermanentBridgeError(f"{kind} message needs media_url or media_id", code="invalid_message")
        media: dict[str, Any] = {"id": message.media_id} if message.media_id else {"link": message.media_url}
        caption = message.caption or message.text
        if caption and kind != "audio":  # Cloud rejects captions on audio
            media["caption"] = caption
        if message.filename and kind == "document":
            media["filename"] = message.filename
        body[kind] = media
    elif kind == "location":
        if message.latitude is None or message.longitude is None:
            raise PermanentBridgeError("location message needs latitude and longitude", code="invalid_message")
        location: dict[str, Any] = {"latitude": message.latitude, "longitude": message.longitude}
        if message.location_name:
            location["name"] = message.location_name
        body["location"] = location
    elif kind == "reaction":
        body["reaction"] = {"message_id": message.reaction_to, "emoji": message.emoji}
    elif kind == "template":
        if not message.template:
            raise PermanentBridgeError("template message needs a template", code="invalid_message")
        body["template"] = message.template
    else:
        raise PermanentBridgeError(f"unsupported message type {kind!r} for the Cloud API", code="unsupported_type")
    if message.reply_to and kind != "reaction":
        body["context"] = {"message_id": message.reply_to}
    if message.correlation:
        body["biz_opaque_callback_data"] = message.correlation
    return body


def _first_error(errors: Any) -> tuple[str, str]:
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        error = errors[0]
        details = (error.get("error_data") or {}).get("details", "") if isinstance(error.get("error_data"), dict) else ""
        return str(error.get("code", "")), str(error.get("title") or error.get("message") or details or "")
    return "", ""


def _text(content: dict, key: str, name: str) -> str:
    return checked_str(content.get(key), name)


def _message_content(message: dict, kind: str) -> tuple[str, dict | None, str]:
    """(text, media, reply_to) of one inbound message, whatever its type."""
    content = message.get(kind) if isinstance(message.get(kind), dict) else {}
    context = checked(message.get("context"), dict, "message.context", default={})
    reply_to = checked_str(context.get("id"), "message.context.id")
    if kind == "text":
        return _text(content, "body", "message.text.body"), None, reply_to
    if kind in ("image", "video", "document", "audio", "sticker"):
        return _text(content, "caption", f"message.{kind}.caption"), dict(content), reply_to
    if kind == "button":
        return _text(content, "text", "message.button.text"), None, reply_to
    if kind == "interactive":
        reply_kind = content.get("type") if isinstance(content.get("type"), str) else ""
        reply = content.get(reply_kind) if isinstance(content.get(reply_kind), dict) else {}
        return _text(reply, "title", f"message.interactive.{reply_kind}.title"), None, reply_to
    if kind == "reaction":
        # The reacted-to message is what a reaction "replies" to.
        return (_text(content, "emoji", "message.reaction.emoji"), None,
                _text(content, "message_id", "message.reaction.message_id"))
    if kind == "location":
        name = content.get("name") or content.get("address") or ""
        return checked_str(name, "message.location.name"), None, reply_to
    if kind == "system":
        return _text(content, "body", "message.system.body"), None, reply_to
    return "", None, reply_to


def _pricing(status: dict) -> dict | None:
    pricing = status.get("pricing")
    if not isinstance(pricing, dict):
        return None
    return {key: checked_str(pricing.get(key), f"status.pricing.{key}") if pricing.get(key) is not None else None
            for key in ("category", "pricing_model", "type")}


def _each(items: Any, name: str) -> list:
    return checked(items, list, name, default=[])


def _events(delivery: dict) -> Iterator[BridgeEvent]:
    """Every message, status and change of a delivery; the malformed ones as kind="invalid", each alone."""
    try:
        entries = _each(delivery.get("entry"), "entry")
    except MalformedEvent as exc:
        yield BridgeEvent(kind="invalid", session="", error_reason=str(exc))
        return
    for entry in entries:
        try:
            changes = _each(checked(entry, dict, "entry[]", default={}).get("changes"), "entry[].changes")
        except MalformedEvent as exc:
            yield BridgeEvent(kind="invalid", session="", error_reason=str(exc))
            continue
        for change in changes:
            yield from _change_events(change)


def _change_events(change: Any) -> Iterator[BridgeEvent]:
    try:
        change = checked(change, dict, "change", default={})
        value = checked(change.get("value"), dict, "change.value", default={})
        metadata = checked(value.get("metadata"), dict, "value.metadata", default={})
        session = checked_str(metadata.get("phone_number_id"), "value.metadata.phone_number_id")
        field_name = checked_str(change.get("field"), "change.field")
        if field_name != "messages":
            yield BridgeEvent(kind="unknown", session=session, message_type=field_name, raw=change)
            return
        names = {}
        for contact in _each(value.get("contacts"), "value.contacts"):
            contact = checked(contact, dict, "value.contacts[]", default={})
            profile = checked(contact.get("profile"), dict, "value.contacts[].profile", default={})
            names[checked_str(contact.get("wa_id"), "value.contacts[].wa_id")] = checked_str(
                profile.get("name"), "value.contacts[].profile.name")
        change_code, change_reason = _first_error(value.get("errors"))
        messages = _each(value.get("messages"), "value.messages")
        statuses = _each(value.get("statuses"), "value.statuses")
    except MalformedEvent as exc:
        yield BridgeEvent(kind="invalid", session="", error_reason=str(exc), raw=change if isinstance(change, dict) else {})
        return
    if (messages or statuses) and not session:
        yield BridgeEvent(kind="invalid", session="", error_reason="value.metadata.phone_number_id is missing", raw=change)
        return
    for message in messages:
        yield _checked(session, message, lambda m: _message_event(session, m, names, change_code, change_reason))
    for status in statuses:
        yield _checked(session, status, lambda s: _status_event(session, s, names))
    if not messages and not statuses:
        # e.g. a change carrying only value.errors: keep it so nothing is dropped silently.
        yield BridgeEvent(kind="unknown", session=session, error_code=change_code,
                          error_reason=change_reason, raw=change)


def _checked(session: str, item: Any, build) -> BridgeEvent:
    try:
        return build(checked(item, dict, "item", default={}))
    except MalformedEvent as exc:
        return BridgeEvent(kind="invalid", session=session, error_reason=str(exc),
                           raw=item if isinstance(item, dict) else {})


def _message_event(session: str, message: dict, names: dict, change_code: str, change_reason: str) -> BridgeEvent:
    kind = checked_str(message.get("type"), "message.type", required=True)
    text, media, reply_to = _message_content(message, kind)
    code, reason = _first_error(message.get("errors"))
    sender = checked_str(message.get("from"), "message.from", required=True)
    timestamp = checked_timestamp(message.get("timestamp"), "message.timestamp")
    return BridgeEvent(
        kind="message",
        session=session,
        provider_message_id=checked_str(message.get("id"), "message.id", required=True),
        chat_id=sender,
        contact_name=names.get(sender) or "",
        timestamp=timestamp,
        emitted_at=timestamp,
        message_type=kind,
        text=text,
        media=media,
        reply_to=reply_to,
        error_code=code or change_code,
        error_reason=reason or change_reason,
        raw=message,
    )


def _status_event(session: str, status: dict, names: dict) -> BridgeEvent:
    code, reason = _first_error(status.get("errors"))
    recipient = checked_str(status.get("recipient_id"), "status.recipient_id")
    timestamp = checked_timestamp(status.get("timestamp"), "status.timestamp")
    return BridgeEvent(
        kind="status",
        session=session,
        provider_message_id=checked_str(status.get("id"), "status.id", required=True),
        chat_id=recipient,
        contact_name=names.get(recipient) or "",
        from_me=True,
        timestamp=timestamp,
        emitted_at=timestamp,
        status=checked_str(status.get("status"), "status.status", required=True, choices=MESSAGE_STATUSES),
        error_code=code,
        error_reason=reason,
        pricing=_pricing(status),
        correlation=checked_str(status.get("biz_opaque_callback_data"), "status.biz_opaque_callback_data"),
        raw=status,
    )


register_dialect("cloud", CloudBridge)
