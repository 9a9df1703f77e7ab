"""Signed, expiring download links: a webhook consumer or a Firebase app downloads media
without the tenant's API key.

The link is `{PUBLIC_BASE_URL}/media/{id}?variant=&expires=&signature=`, the
signature an HMAC-SHA256 over (id, variant, expires) with a key derived from
SECRET_KEY for this purpose alone (django.utils.crypto.salted_hmac): rotating
SECRET_KEY revokes every link.

Expiry is rounded up to the next hour, so the same message rendered twice
within the hour (the event, then GET /messages/{id}) carries the same link.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime
from urllib.parse import urlencode

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac

SALT = "waplatform.media.signed-link"
ROUND_SECONDS = 3600
VARIANTS = ("", "thumb")


def _signature(media_id: int, variant: str, expires: int) -> str:
    return salted_hmac(SALT, f"{media_id}:{variant}:{expires}", algorithm="sha256").hexdigest()


def expiry(now: datetime | None = None) -> int:
    now = now or timezone.now()
    at = int(now.timestamp()) + settings.MEDIA_URL_TTL_SECONDS
    return -(-at // ROUND_SECONDS) * ROUND_SECONDS


def signed_link(media_id: int, *, variant: str = "", now: datetime | None = None) -> tuple[str, datetime]:
    """(absolute URL, when it expires)."""
    expires = expiry(now)
    query = {"expires": expires, "signature": _signature(media_id, variant, expires)}
    if variant:
        query = {"variant": variant, **query}
    url = f"{settings.PUBLIC_BASE_URL}/media/{media_id}?{urlencode(query)}"
    return url, datetime.fromtimestamp(expires, tz=UTC)


class LinkRefused(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code, self.detail = code, detail


def verify(media_id: int, *, variant: str, expires: str, signature: str, now: datetime | None = None) -> None:
    """Raise LinkRefused unless the link was signed by us and has not expired."""
    if variant not in VARIANTS or not expires.isdigit() or not signature:
        raise LinkRefused("invalid_signature", "This media link is malformed; take the link from media.url as given.")
    if not hmac.compare_digest(signature.encode(), _signature(media_id, variant, int(expires)).encode()):
        raise LinkRefused("invalid_signature", "This media link's signature is wrong; take the link from media.url "
                                               "as given.")
    at = datetime.fromtimestamp(int(expires), tz=UTC)
    if at <= (now or timezone.now()):
        raise LinkRefused("link_expired", f"This media link expired at {at.isoformat()}; read the message again "
                                          "(GET /api/v1/messages/{id}) for a fresh media.url.")
