"""What the sandbox simulates: sessions, Cloud numbers, acks, replies. All in memory.

Nothing here survives a restart, on purpose: a crashed sandbox behaves like a
crashed bridge whose sessions must be started again.
"""

from __future__ import annotations

import asyncio
import base64
import os
import random
import secrets
import string
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pooling.bridges.sandbox.webhooks import Dispatcher

# Recipients whose digits start with this answer by themselves (documented in docs/bridges.md).
ECHO_PREFIX = "1555000"
ECHO_TEXT = "Sandbox echo: {text}"
STARTING_SECONDS = 0.05
ACKS = ((1, "SERVER"), (2, "DEVICE"), (3, "READ"))
CLOUD_STATUSES = ("sent", "delivered", "read")
SENT_RECORD_SIZE = 50_000
PRICING = {"billable": True, "pricing_model": "PMP", "category": "service", "type": "regular"}


@dataclass
class SandboxConfig:
    capacity: int
    api_key: str = "sandbox"
    auto_scan_seconds: float = 3.0  # 0: only POST /sandbox/scan completes a login
    ack_delay: float = 0.2
    echo_delay: float = 1.0


@dataclass
class Faults:
    latency_ms: int = 0
    error_status: int = 0
    error_count: int = 0
    error_code: int | None = None


@dataclass
class SandboxMedia:
    """A file the sandbox holds: one a contact 'sent' (served to the platform) or one uploaded to it."""

    id: str
    owner: str  # WAHA session name or Cloud phone_number_id
    data: bytes
    mimetype: str
    filename: str = ""

    @property
    def sha256(self) -> str:
        import hashlib

        return hashlib.sha256(self.data).hexdigest()


MAX_MEDIA_BYTES = 100 * 1024 * 1024

# What an inbound media `type` is called in each dialect (WEBJS `_data.type`; Cloud `type`).
WAHA_MEDIA_TYPES = {"image": "image", "voice": "ptt", "audio": "audio", "document": "document",
                    "video": "video", "sticker": "sticker"}
CLOUD_MEDIA_TYPES = {"image": "image", "voice": "audio", "audio": "audio", "document": "document",
                     "video": "video", "sticker": "sticker"}


@dataclass
class Hook:
    url: str
    events: list[str]
    hmac_key: str = ""
    retries: dict | None = None  # WAHA's `retries` config (webhooks.retry_delays)

    def wants(self, event: str) -> bool:
        if "*" in self.events or event in self.events:
            return True
        return event == "message" and "message.any" in self.events


@dataclass
class WahaSession:
    name: str
    config: dict
    hooks: list[Hook]
    status: str = "STOPPED"
    authenticated: bool = False
    me: dict | None = None
    qr_value: str = ""
    qr_png: bytes = b""
    history: deque = field(default_factory=lambda: deque(maxlen=3))
    task: asyncio.Task | None = None

    def public(self) -> dict:
        config = dict(self.config)
        # The hmac key is a secret shared with the platform: never echo it back.
        config["webhooks"] = [{**w, "hmac": {"key": "***"}} if w.get("hmac") else w for w in config.get("webhooks", [])]
        return {"name": self.name, "status": self.status, "config": config, "me": self.me,
                "engine": {"engine": "SANDBOX"}, "sandbox": True}


@dataclass
class CloudNumber:
    phone_number_id: str
    access_token: str
    app_secret: str
    webhook_url: str
    display_phone_number: str
    waba_id: str
    metadata: dict = field(default_factory=dict)

    def public(self) -> dict:
        return {"id": self.phone_number_id, "display_phone_number": self.display_phone_number,
                "verified_name": f"Sandbox {self.phone_number_id}", "quality_rating": "GREEN",
                "code_verification_status": "NOT_VERIFIED", "platform_type": "CLOUD_API"}


def fake_digits() -> str:
    # 999 is not an assigned country code, so a fake number can never reach a real person.
    return "999" + "".join(random.choices(string.digits, k=9))


def waha_message_id(chat_id: str, from_me: bool) -> str:
    return f"{'true' if from_me else 'false'}_{chat_id}_{secrets.token_hex(10).upper()}"


def wamid() -> str:
    return "wamid." + base64.b64encode(os.urandom(27)).decode()


def now_ms() -> int:
    return int(time.time() * 1000)


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.sessions: dict[str, WahaSession] = {}
        self.numbers: dict[str, CloudNumber] = {}
        self.faults = Faults()
        self.dispatcher = Dispatcher()
        self.media: dict[str, SandboxMedia] = {}
        # Every media file a send handed the sandbox (by bytes, link or uploaded id), for tests to compare.
        self.received_media: deque = deque(maxlen=200)
        # Every send it accepted, in order: the fault benchmark counts duplicates and losses
        # from what the bridge itself saw, not from what the platform believes it sent.
        self.sent: deque = deque(maxlen=SENT_RECORD_SIZE)

    @property
    def used(self) -> int:
        return len(self.sessions) + len(self.numbers)

    @property
    def full(self) -> bool:
        return self.used >= self.config.capacity

    def status(self) -> dict:
        sessions = [{"name": s.name, "dialect": "waha", "status": s.status} for s in self.sessions.values()]
        sessions += [{"name": n.phone_number_id, "dialect": "cloud", "status": "WORKING"} for n in self.numbers.values()]
        return {"sandbox": True, "capacity": self.config.capacity, "used": self.used, "sessions": sessions,
                "pid": os.getpid(), "auto_scan_seconds": self.config.auto_scan_seconds}

    # --- WAHA sessions -----------------------------------------------------------------

    def add_session(self, name: str, config: dict) -> WahaSession:
        hooks = [
            Hook(url=w["url"], events=list(w.get("events") or ["message"]), hmac_key=(w.get("hmac") or {}).get("key", ""),
                 retries=w.get("retries") if isinstance(w.get("retries"), dict) else None)
            for w in config.get("webhooks") or [] if isinstance(w, dict) and w.get("url")
        ]
        session = WahaSession(name=name, config=config, hooks=hooks)
        self.sessions[name] = session
        return session

    def emit_waha(self, session: WahaSession, event: str, payload: dict) -> None:
        envelope = {"id": "evt_" + secrets.token_hex(12), "timestamp": now_ms(), "event": event,
                    "session": session.name, "metadata": session.config.get("metadata") or {}, "me": session.me,
                    "payload": payload, "engine": "SANDBOX",
                    "environment": {"tier": "SANDBOX", "version": "wa-platform-sandbox", "engine": "SANDBOX"}}
        for hook in session.hooks:
            if hook.wants(event):
                self.dispatcher.spawn(self.dispatcher.post_waha(hook.url, hook.hmac_key, envelope, hook.retries))

    def set_status(self, session: WahaSession, status: str) -> None:
        session.status = status
        session.history.append({"status": status, "timestamp": now_ms()})
        self.emit_waha(session, "session.status", {"status": status, "statuses": list(session.history), "data": {}})

    def _replace_task(self, session: WahaSession, coro: Any) -> None:
        if session.task and not session.task.done():
            session.task.cancel()
        session.task = self.dispatcher.spawn(coro) if coro is not None else None

    def start(self, session: WahaSession) -> None:
        if session.status in ("STARTING", "SCAN_QR_CODE", "WORKING"):
            return  # start is idempotent, as in WAHA
        self.set_status(session, "STARTING")
        self._replace_task(session, self._boot(session))

    async def _boot(self, session: WahaSession) -> None:
        await asyncio.sleep(STARTING_SECONDS)
        if session.authenticated:
            self.set_status(session, "WORKING")
            return
        session.qr_value = f"wa-platform-sandbox:{session.name}:{secrets.token_urlsafe(18)}"
        session.qr_png = b""
        self.set_status(session, "SCAN_QR_CODE")
        if self.config.auto_scan_seconds > 0:
            await asyncio.sleep(self.config.auto_scan_seconds)
            self.scan(session)

    def scan(self, session: WahaSession) -> bool:
        """Simulate the phone scanning the QR (or entering the pairing code)."""
        if session.status != "SCAN_QR_CODE":
            return False
        session.authenticated = True
        session.me = {"id": f"{fake_digits()}@c.us", "pushName": "Sandbox"}
        session.qr_value, session.qr_png = "", b""
        self.set_status(session, "WORKING")
        return True

    def stop(self, session: WahaSession) -> None:
        self._replace_task(session, None)
        if session.status != "STOPPED":
            self.set_status(session, "STOPPED")

    def logout(self, session: WahaSession) -> None:
        self.stop(session)
        session.authenticated, session.me = False, None

    def delete(self, session: WahaSession) -> None:
        self.stop(session)
        self.sessions.pop(session.name, None)

    def qr_png(self, session: WahaSession) -> bytes:
        if not session.qr_png:
            from pooling.bridges.sandbox.qr import render_png

            session.qr_png = render_png(session.qr_value)
        return session.qr_png

    # --- WAHA messages --------------------------------------------------------------------

    def waha_sent(self, session: WahaSession, chat_id: str, text: str, with_acks: bool = True) -> str:
        message_id = waha_message_id(chat_id, from_me=True)
        self.record_sent(message_id, session.name, chat_id, text)
        if with_acks:
            self.dispatcher.spawn(self._waha_acks(session, chat_id, message_id))
        self._maybe_echo(session.name, chat_id.split("@", 1)[0], text)
        return message_id

    def record_sent(self, message_id: str, session: str, to: str, text: str) -> None:
        self.sent.append({"id": message_id, "session": session, "to": to, "text": text, "at": time.time()})

    async def _waha_acks(self, session: WahaSession, chat_id: str, message_id: str) -> None:
        for ack, name in ACKS:
            await asyncio.sleep(self.config.ack_delay)
            self.emit_waha(session, "message.ack",
                           {"id": message_id, "from": chat_id, "to": chat_id, "participant": None,
                            "fromMe": True, "ack": ack, "ackName": name})

    def waha_inbound(self, session: WahaSession, sender: str, text: str, name: str, reply_to: str = "",
                     media: dict | None = None) -> str:
        chat_id = f"{sender}@c.us"
        message_id = waha_message_id(chat_id, from_me=False)
        payload = {"id": message_id, "timestamp": int(time.time()), "from": chat_id, "fromMe": False,
                   "source": "app", "to": (session.me or {}).get("id"), "body": text, "hasMedia": False,
                   "media": None, "ack": 1, "ackName": "SERVER", "replyTo": reply_to or None,
                   "_data": {"notifyName": name, "type": "chat"}}
        if media is not None:
            stored = self.keep_media(session.name, media)
            extension = "." + (stored.filename.rsplit(".", 1)[-1] if "." in stored.filename else "bin")
            # WAHA serves downloaded media itself, under /api/files/, with the same API key.
            payload.update(hasMedia=True, media={"url": f"{media['base_url']}/api/files/{session.name}/{stored.id}"
                                                        f"{extension}", "mimetype": stored.mimetype,
                                                 "filename": stored.filename or None})
            payload["_data"]["type"] = WAHA_MEDIA_TYPES[media["type"]]
        self.emit_waha(session, "message", payload)
        return message_id

    # --- Cloud numbers -----------------------------------------------------------------

    def cloud_envelope(self, number: CloudNumber, value: dict) -> dict:
        metadata = {"display_phone_number": number.display_phone_number, "phone_number_id": number.phone_number_id}
        return {"object": "whatsapp_business_account",
                "entry": [{"id": number.waba_id, "changes": [{"field": "messages",
                           "value": {"messaging_product": "whatsapp", "metadata": metadata, **value}}]}]}

    def emit_cloud(self, number: CloudNumber, value: dict) -> None:
        if number.webhook_url:
            delivery = self.cloud_envelope(number, value)
            self.dispatcher.spawn(self.dispatcher.post_cloud(number.webhook_url, number.app_secret, delivery))

    def cloud_sent(self, number: CloudNumber, to: str, text: str, correlation: str) -> str:
        message_id = wamid()
        self.record_sent(message_id, number.phone_number_id, to, text)
        self.dispatcher.spawn(self._cloud_statuses(number, to, message_id, correlation))
        self._maybe_echo(number.phone_number_id, to, text)
        return message_id

    async def _cloud_statuses(self, number: CloudNumber, to: str, message_id: str, correlation: str) -> None:
        for status in CLOUD_STATUSES:
            await asyncio.sleep(self.config.ack_delay)
            entry: dict[str, Any] = {"id": message_id, "status": status, "timestamp": str(int(time.time())),
                                     "recipient_id": to, "pricing": dict(PRICING)}
            if correlation:
                entry["biz_opaque_callback_data"] = correlation
            self.emit_cloud(number, {"statuses": [entry]})

    def cloud_inbound(self, number: CloudNumber, sender: str, text: str, name: str, reply_to: str = "",
                      media: dict | None = None) -> str:
        message_id = wamid()
        message: dict[str, Any] = {"from": sender, "id": message_id, "timestamp": str(int(time.time())),
                                   "type": "text", "text": {"body": text}}
        if media is not None:
            stored = self.keep_media(number.phone_number_id, media)
            kind = CLOUD_MEDIA_TYPES[media["type"]]
            # Meta's webhook names the file by id only; GET /{id} gives the download URL.
            content: dict[str, Any] = {"id": stored.id, "mime_type": stored.mimetype, "sha256": stored.sha256}
            if text and kind in ("image", "video", "document"):
                content["caption"] = text
            if kind == "document" and stored.filename:
                content["filename"] = stored.filename
            if media["type"] == "voice":
                content["voice"] = True
            message.pop("text")
            message.update(type=kind, **{kind: content})
        if reply_to:
            message["context"] = {"from": number.display_phone_number, "id": reply_to}
        self.emit_cloud(number, {"contacts": [{"profile": {"name": name}, "wa_id": sender}], "messages": [message]})
        return message_id

    # --- both dialects ----------------------------------------------------------------------

    def inbound(self, session_name: str, sender: str, text: str, name: str, reply_to: str = "",
                media: dict | None = None) -> str | None:
        """`media`: {type, data (bytes), mimetype, filename, base_url (where the sandbox is reached)}."""
        if session_name in self.sessions:
            return self.waha_inbound(self.sessions[session_name], sender, text, name, reply_to, media)
        if session_name in self.numbers:
            return self.cloud_inbound(self.numbers[session_name], sender, text, name, reply_to, media)
        return None

    # --- media ------------------------------------------------------------------------------

    def keep_media(self, owner: str, media: dict) -> SandboxMedia:
        stored = SandboxMedia(id=secrets.token_hex(12), owner=owner, data=media["data"],
                              mimetype=str(media.get("mimetype") or "application/octet-stream"),
                              filename=str(media.get("filename") or ""))
        self.media[stored.id] = stored
        return stored

    async def fetch_link(self, url: str) -> bytes | None:
        """What a real bridge does with a `link`/`file.url`: download it. None when that fails:
        WhatsApp accepts such a send and fails it later, and links in demos point nowhere."""
        try:
            response = await self.dispatcher._http().get(url)
        except Exception:  # any transport failure
            return None
        if response.status_code != 200 or len(response.content) > MAX_MEDIA_BYTES:
            return None
        return response.content

    def record_received(self, *, dialect: str, session: str, to: str, kind: str, via: str, data: bytes | None,
                        mimetype: str, filename: str) -> None:
        """`data` None: a link the sandbox could not download (recorded as such, with no bytes)."""
        self.received_media.append({"dialect": dialect, "session": session, "to": to, "type": kind, "via": via,
                                    "mimetype": mimetype, "filename": filename, "downloaded": data is not None,
                                    "size": len(data or b""), "sha256": SandboxMedia("", "", data or b"", mimetype).sha256,
                                    "data": base64.b64encode(data or b"").decode()})

    def _maybe_echo(self, session_name: str, recipient_digits: str, text: str) -> None:
        if recipient_digits.startswith(ECHO_PREFIX):
            self.dispatcher.spawn(self._echo(session_name, recipient_digits, text))

    async def _echo(self, session_name: str, sender: str, text: str) -> None:
        await asyncio.sleep(self.config.echo_delay)
        session = self.sessions.get(session_name)
        if session is not None and session.status != "WORKING":
            return  # a logged-out phone receives nothing
        # No push name: the platform names contacts after it, and an echo must not rename
        # the contact the tenant wrote to (the inbox marks echo numbers "sandbox" instead).
        self.inbound(session_name, sender, ECHO_TEXT.format(text=text), "")
