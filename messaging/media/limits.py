"""What WhatsApp accepts per media type, and the checks both directions apply.

From Meta's "Supported media types" (Cloud API reference, media): the same
limits hold for WhatsApp Web bridges, since the phone enforces them too.
MEDIA_MAX_BYTES lowers every limit at once when an operator wants less.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass

from django.conf import settings

MB = 1024 * 1024
KB = 1024


@dataclass(frozen=True)
class Rule:
    max_bytes: int
    content_types: frozenset[str]


RULES: dict[str, Rule] = {
    "image": Rule(5 * MB, frozenset({"image/jpeg", "image/png"})),
    "sticker": Rule(500 * KB, frozenset({"image/webp"})),
    "audio": Rule(16 * MB, frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"})),
    "video": Rule(16 * MB, frozenset({"video/mp4", "video/3gpp"})),
    "document": Rule(100 * MB, frozenset({
        "text/plain", "text/csv", "application/pdf", "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-powerpoint",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/zip",
    })),
}
KINDS = tuple(RULES)
UPLOAD_KINDS_HELP = ("image (jpeg, png; 5 MB), audio (aac, amr, mpeg, mp4, ogg; 16 MB), video (mp4, 3gpp; 16 MB), "
                     "document (pdf, office, text, csv, zip; 100 MB). Default: from the file's content type.")
# Inbound names that are one of ours: WhatsApp Web's voice note (ptt) is an audio message.
KIND_ALIASES = {"ptt": "audio", "voice": "audio"}


class MediaRefused(Exception):
    """The file breaks a limit; `code` and the message say which and how to fix it."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def normalise_content_type(value: str) -> str:
    # "audio/ogg; codecs=opus" is audio/ogg for every rule here.
    return (value or "").split(";", 1)[0].strip().lower()


def kind_for(message_type: str) -> str | None:
    kind = KIND_ALIASES.get(message_type, message_type)
    return kind if kind in RULES else None


def kind_for_content_type(content_type: str) -> str:
    """The message type an upload without an explicit type is sent as."""
    content_type = normalise_content_type(content_type)
    for kind in ("image", "audio", "video", "sticker"):
        if content_type in RULES[kind].content_types:
            return kind
    return "document"


def max_bytes(kind: str) -> int:
    return min(RULES[kind].max_bytes, settings.MEDIA_MAX_BYTES)


def check(*, kind: str, content_type: str, size: int) -> None:
    """Raise MediaRefused when a file of `size` bytes and `content_type` may not be a `kind` message."""
    rule = RULES[kind]
    content_type = normalise_content_type(content_type)
    if content_type not in rule.content_types:
        allowed = ", ".join(sorted(rule.content_types))
        raise MediaRefused("media_type_not_allowed",
                           f"{content_type or 'an unknown content type'} is not allowed for {kind} messages; "
                           f"WhatsApp accepts {allowed}.")
    limit = max_bytes(kind)
    if size > limit:
        raise MediaRefused("media_too_large",
                           f"The file is {size} bytes; {kind} messages may be at most {limit} bytes "
                           f"({limit / MB:.1f} MB).")


def guess_content_type(filename: str) -> str:
    return mimetypes.guess_type(filename or "")[0] or "application/octet-stream"


def extension_for(content_type: str) -> str:
    content_type = normalise_content_type(content_type)
    special = {"image/jpeg": ".jpg", "audio/ogg": ".ogg", "audio/mpeg": ".mp3", "text/plain": ".txt"}
    return special.get(content_type) or mimetypes.guess_extension(content_type) or ".bin"
