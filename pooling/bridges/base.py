"""The one interface the platform uses to talk to WhatsApp bridge workers.

Pure Python on purpose: rq jobs, the sandbox and tests import it without
Django configured. Dialects live in waha.py and cloud.py, which register
themselves (`register_dialect`); `get_bridge` picks one.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

SESSION_STATUSES = ("STOPPED", "STARTING", "SCAN_QR_CODE", "WORKING", "FAILED")
MESSAGE_STATUSES = ("sent", "delivered", "read", "played", "failed")


@dataclass
class SessionInfo:
    name: str
    status: str  # STOPPED|STARTING|SCAN_QR_CODE|WORKING|FAILED
    me: dict | None = None
    raw: dict = field(default_factory=dict)


@dataclass
class QrCode:
    value: str  # the raw string encoded in the QR
    png: bytes


@dataclass
class OutboundMessage:
    to: str  # E.164 digits or chat id
    type: str  # text|image|document|audio|video|location|reaction|template
    text: str = ""
    media_url: str = ""
    media_id: str = ""  # a Cloud API media id (from upload_media): sent by id, not by link
    media_data: bytes | None = None  # the bytes themselves, for bridges that take them inline (WAHA)
    media_mimetype: str = ""
    caption: str = ""
    filename: str = ""
    latitude: float | None = None
    longitude: float | None = None
    location_name: str = ""
    reaction_to: str = ""  # provider message id
    emoji: str = ""
    template: dict | None = None
    reply_to: str = ""
    correlation: str = ""  # e.g. biz_opaque_callback_data


@dataclass
class SendResult:
    provider_message_id: str
    raw: dict


@dataclass
class MediaSource:
    """Where an inbound media file can be downloaded, and what the bridge says it is.

    `on_bridge` is True when `url` is on the bridge's own base URL (the operator's
    trusted host, spoken to with the bridge's credentials in `headers`); False
    when the bridge pointed elsewhere, which the platform fetches through its
    egress guard like any URL it did not choose.
    """

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    on_bridge: bool = True
    content_type: str = ""
    filename: str = ""
    size: int | None = None
    sha256: str = ""


@dataclass
class BridgeEvent:
    kind: str  # "message" | "status" | "session" | "unknown" | "invalid" (error_reason says why)
    session: str  # WAHA session name, or Cloud phone_number_id
    provider_message_id: str = ""
    chat_id: str = ""  # contact digits (E.164 without +) for 1:1 chats
    contact_name: str = ""
    from_me: bool = False
    timestamp: datetime | None = None  # tz-aware UTC
    message_type: str = ""
    text: str = ""
    media: dict | None = None
    reply_to: str = ""
    status: str = ""  # kind=status: sent|delivered|read|played|failed; kind=session: session status
    error_code: str = ""
    error_reason: str = ""
    pricing: dict | None = None  # category, pricing_model, type (Cloud)
    correlation: str = ""
    raw: dict = field(default_factory=dict)
    # When the bridge emitted the event (WAHA's envelope, else the provider's own
    # timestamp): the intake refuses stale ones as replays.
    emitted_at: datetime | None = None


class BridgeError(Exception):
    """Base of every error an adapter raises; callers branch on `transient`."""

    transient: ClassVar[bool] = False

    def __init__(self, reason: str, *, code: str | int = "", http_status: int | None = None) -> None:
        super().__init__(f"[{code}] {reason}" if code != "" else reason)
        self.code = str(code)
        self.reason = reason
        self.http_status = http_status


class TransientBridgeError(BridgeError):
    """Worth retrying with backoff: timeouts, refused connections, 5xx, rate limits.

    On a send, the outcome is unknown (the request may have reached WhatsApp
    before the timeout), so retries should go through the caller's idempotency.
    """

    transient = True


class PermanentBridgeError(BridgeError):
    """Retrying will not help: bad request, bad recipient, bad credentials."""


class SlotFullError(PermanentBridgeError):
    """The worker refuses a session beyond its capacity: pick another slot."""


class SessionNotFound(PermanentBridgeError):
    pass


class InvalidSignature(Exception):
    """The webhook signature is missing, malformed or wrong; drop the request."""


class MalformedEvent(ValueError):
    """A correctly signed event whose fields are not what the protocol says; it is refused."""


def utc_from_timestamp(value: Any) -> datetime | None:
    """Provider timestamps come as seconds, milliseconds, ints or strings."""
    if value in (None, "") or isinstance(value, bool):
        return None
    try:
        number = float(value)
        if number > 1e11:  # milliseconds (WAHA envelopes)
            number /= 1000
        return datetime.fromtimestamp(number, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):  # not a number, NaN, or past year 9999
        return None


def checked_timestamp(value: Any, name: str) -> datetime | None:
    """None when absent; a number (or a string of ASCII digits) that is a real date, or MalformedEvent."""
    if value is None:
        return None
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise MalformedEvent(f"{name} is {value[:40]!r}, not a number")
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedEvent(f"{name} is a {type(value).__name__}, not a number")
    when = utc_from_timestamp(value)
    if when is None:
        raise MalformedEvent(f"{name} {value!r} is not a date")
    return when


def checked_str(value: Any, name: str, *, required: bool = False, choices: tuple[str, ...] = ()) -> str:
    """A string field of a signed payload; absent is "" unless required."""
    if value is None:
        if required:
            raise MalformedEvent(f"{name} is missing")
        return ""
    if not isinstance(value, str):
        raise MalformedEvent(f"{name} is a {type(value).__name__}, not a string")
    if required and not value:
        raise MalformedEvent(f"{name} is empty")
    if choices and value not in choices:
        raise MalformedEvent(f"{name} {value[:40]!r} is not one of {', '.join(choices)}")
    return value


def checked(value: Any, kind: type, name: str, *, default: Any = None) -> Any:
    """A field that must be of `kind` (dict, list, bool) when present."""
    if value is None:
        return default
    if not isinstance(value, kind):
        raise MalformedEvent(f"{name} is a {type(value).__name__}, not a {kind.__name__}")
    return value


def same_origin(url: str, base_url: str) -> bool:
    """True when `url` is on the scheme, host and port of `base_url`."""
    from urllib.parse import urlsplit

    a, b = urlsplit(url), urlsplit(base_url)
    default = {"http": 80, "https": 443}
    try:
        return (a.scheme, a.hostname, a.port or default.get(a.scheme)) == (b.scheme, b.hostname, b.port or default.get(b.scheme))
    except ValueError:
        return False


def lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


class Bridge(abc.ABC):
    dialect: ClassVar[str]

    def __init__(self, *, base_url: str, api_key: str, timeout: float = 10.0, **options: Any) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.options = options

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise TransientBridgeError when the worker is unreachable or unhealthy."""

    @abc.abstractmethod
    def start_session(
        self, name: str, *, webhook_url: str, webhook_secret: str, metadata: dict | None = None
    ) -> SessionInfo:
        """Create the session or start the existing one; safe to call repeatedly."""

    @abc.abstractmethod
    def get_session(self, name: str) -> SessionInfo: ...

    def list_sessions(self) -> list[SessionInfo] | None:
        """Every session on the worker in one call, or None where the dialect has no such call
        (then callers ask per session). Health checks use it: one request per slot, not per tenant."""
        return None

    @abc.abstractmethod
    def stop_session(self, name: str) -> None: ...

    @abc.abstractmethod
    def logout_session(self, name: str) -> None: ...

    @abc.abstractmethod
    def delete_session(self, name: str) -> None: ...

    @abc.abstractmethod
    def get_qr(self, name: str) -> QrCode: ...

    @abc.abstractmethod
    def request_pairing_code(self, name: str, phone_number: str) -> str: ...

    @abc.abstractmethod
    def send(self, name: str, message: OutboundMessage) -> SendResult: ...

    @abc.abstractmethod
    def mark_seen(self, name: str, chat_id: str, message_ids: list[str]) -> None: ...

    def media_source(self, name: str, media: dict) -> MediaSource:
        """Where to download an inbound message's media (`BridgeEvent.media`)."""
        raise PermanentBridgeError(f"the {self.dialect} dialect cannot download media", code="unsupported")

    def upload_media(self, name: str, data: bytes, *, content_type: str, filename: str) -> str:
        """Hand the bridge a file to send later by id; returns the id. Dialects that take
        the bytes (or a link) in the send call itself return ''."""
        return ""

    @classmethod
    @abc.abstractmethod
    def parse_webhook(
        cls, raw_body: bytes, headers: Mapping[str, str], secret: str, *, max_depth: int = 32
    ) -> list[BridgeEvent]:
        """Verify the signature over the raw bytes (constant time, fail closed), then parse.

        Raises InvalidSignature before looking at the body; raises ValueError
        when a correctly signed body is not JSON or nests deeper than max_depth
        (waplatform.json_limits.JsonTooDeep). Each event whose fields are not
        what the protocol says becomes kind="invalid" with the reason, so the
        well-formed events of the same delivery still count.
        """

    def close(self) -> None:
        """Release pooled connections; adapters holding a client override this."""

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_DIALECTS: dict[str, type[Bridge]] = {}


def register_dialect(name: str, adapter: type[Bridge]) -> None:
    """Make `get_bridge(name)` build `adapter`; pooling/bridges/waha.py and cloud.py register themselves.

    The interface must not import its implementations (they import it), so the
    adapters come to the registry instead.
    """
    _DIALECTS[name] = adapter


def get_bridge(dialect: str, **kwargs: Any) -> Bridge:
    """Build the adapter for a slot's dialect.

    Sandbox workers speak the WAHA dialect for sessions (and the Cloud dialect
    for numbers registered on them), so "sandbox" gives the WAHA adapter.
    """
    adapter = _DIALECTS.get(dialect)
    if adapter is None:
        known = ", ".join(sorted(_DIALECTS)) or "none: import pooling.bridges.waha / cloud"
        raise ValueError(f"unknown bridge dialect {dialect!r} (registered: {known})")
    return adapter(**kwargs)
