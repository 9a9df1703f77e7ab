"""Webhook signatures of both dialects, stdlib only (the sandbox signs with these too).

Both are HMACs over the raw request bytes: re-serialising parsed JSON would
change the bytes and break verification.
"""

from __future__ import annotations

import hashlib
import hmac


def waha_signature(key: str, raw_body: bytes) -> str:
    """Value of WAHA's X-Webhook-Hmac header: hex HMAC-SHA512."""
    return hmac.new(key.encode(), raw_body, hashlib.sha512).hexdigest()


def cloud_signature(app_secret: str, raw_body: bytes) -> str:
    """Value of Meta's X-Hub-Signature-256 header, prefix included."""
    return "sha256=" + hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()


def waha_signature_valid(key: str, raw_body: bytes, header_value: str | None) -> bool:
    # Fail closed: an unconfigured key must never accept an unsigned body.
    if not key or not header_value:
        return False
    # Bytes, not str: compare_digest raises on non-ASCII str input from a hostile header.
    return hmac.compare_digest(waha_signature(key, raw_body).encode(), header_value.strip().lower().encode())


def cloud_signature_valid(app_secret: str, raw_body: bytes, header_value: str | None) -> bool:
    if not app_secret or not header_value:
        return False
    value = header_value.strip()
    if not value.startswith("sha256="):
        return False
    return hmac.compare_digest(cloud_signature(app_secret, raw_body).encode(), ("sha256=" + value[7:].lower()).encode())
