"""Meta's WhatsApp Cloud API dialect. See PROTOCOLS.md.

The "session" is the phone_number_id and api_key is the bearer access token.
There is no QR and nothing to start: the number either answers on Graph or not.
"""

from __future__ import annotations

import hmac
import json
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
    OutboundMessage,
    PermanentBridgeError,
    QrCode,
    SendResult,
    SessionInfo,
    SessionNotFound,
    SlotFullError,
    TransientBridgeError,
    lower_headers,
    register_dialect,
    same_origin,
    utc_from_timestamp,
)
from pooling.bridges.signatures import cloud_signature_valid

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
    return re.sub(r"\D", "", value)


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
    def parse_webhook(cls, raw_body: bytes, headers: Mapping[str, str], secret: str) -> list[BridgeEvent]:
        if not cloud_signature_valid(secret, raw_body, lower_headers(headers).get("x-hub-signature-256")):
            raise InvalidSignature("bad or missing X-Hub-Signature-256")
        delivery = json.loads(raw_body)
        return list(_events(delivery if isinstance(delivery, dict) else {}))


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


def _message_content(message: dict) -> tuple[str, dict | None, str]:
    """(text, media, reply_to) of one inbound message, whatever its type."""
    kind = message.get("type", "")
    content = message.get(kind) if isinstance(message.get(kind), dict) else {}
    reply_to = str((message.get("context") or {}).get("id", ""))
    if kind == "text":
        return str(content.get("body", "")), None, reply_to
    if kind in ("image", "video", "document", "audio", "sticker"):
        return str(content.get("caption", "")), dict(content), reply_to
    if kind == "button":
        return str(content.get("text", "")), None, reply_to
    if kind == "interactive":
        reply = content.get(content.get("type", "")) if isinstance(content.get(content.get("type", "")), dict) else {}
        return str(reply.get("title", "")), None, reply_to
    if kind == "reaction":
        # The reacted-to message is what a reaction "replies" to.
        return str(content.get("emoji", "")), None, str(content.get("message_id", ""))
    if kind == "location":
        return str(content.get("name") or content.get("address") or ""), None, reply_to
    if kind == "system":
        return str(content.get("body", "")), None, reply_to
    return "", None, reply_to


def _pricing(status: dict) -> dict | None:
    pricing = status.get("pricing")
    if not isinstance(pricing, dict):
        return None
    return {"category": pricing.get("category"), "pricing_model": pricing.get("pricing_model"), "type": pricing.get("type")}


def _events(delivery: dict) -> Iterator[BridgeEvent]:
    for entry in delivery.get("entry") or []:
        for change in (entry or {}).get("changes") or []:
            value = change.get("value") if isinstance(change.get("value"), dict) else {}
            session = str((value.get("metadata") or {}).get("phone_number_id", ""))
            if change.get("field") != "messages":
                yield BridgeEvent(kind="unknown", session=session, message_type=str(change.get("field", "")), raw=change)
                continue
            names = {c.get("wa_id"): (c.get("profile") or {}).get("name", "") for c in value.get("contacts") or []}
            change_code, change_reason = _first_error(value.get("errors"))
            messages = value.get("messages") or []
            statuses = value.get("statuses") or []
            for message in messages:
                text, media, reply_to = _message_content(message)
                code, reason = _first_error(message.get("errors"))
                sender = str(message.get("from", ""))
                yield BridgeEvent(
                    kind="message",
                    session=session,
                    provider_message_id=str(message.get("id", "")),
                    chat_id=sender,
                    contact_name=str(names.get(sender) or ""),
                    timestamp=utc_from_timestamp(message.get("timestamp")),
                    message_type=str(message.get("type", "")),
                    text=text,
                    media=media,
                    reply_to=reply_to,
                    error_code=code or change_code,
                    error_reason=reason or change_reason,
                    raw=message,
                )
            for status in statuses:
                code, reason = _first_error(status.get("errors"))
                recipient = str(status.get("recipient_id", ""))
                yield BridgeEvent(
                    kind="status",
                    session=session,
                    provider_message_id=str(status.get("id", "")),
                    chat_id=recipient,
                    contact_name=str(names.get(recipient) or ""),
                    from_me=True,
                    timestamp=utc_from_timestamp(status.get("timestamp")),
                    status=str(status.get("status", "")),
                    error_code=code,
                    error_reason=reason,
                    pricing=_pricing(status),
                    correlation=str(status.get("biz_opaque_callback_data", "")),
                    raw=status,
                )
            if not messages and not statuses:
                # e.g. a change carrying only value.errors: keep it so nothing is dropped silently.
                yield BridgeEvent(kind="unknown", session=session, error_code=change_code,
                                  error_reason=change_reason, raw=change)


register_dialect("cloud", CloudBridge)
