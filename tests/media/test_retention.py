"""Retention per tier: the hourly cleanup deletes files past the tenant's tier retention and
frees the storage; the bytes a tenant keeps count in its usage and cost."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from messaging.services.media_retention import cleanup_expired_media
from pooling.costs import month_start
from tests.media.conftest import SAMPLES

pytestmark = pytest.mark.integration


def _months_this_month() -> Decimal:
    """Months (of 30 days) since the 1st: how long this month's stored bytes have been paid for."""
    now = timezone.now()
    return Decimal((now - month_start(now)).total_seconds()) / Decimal(30 * 24 * 3600)


def test_cleanup_deletes_media_past_the_tiers_retention_and_frees_the_storage(waha_platform, media_root, settings):
    settings.MEDIA_RETENTION_DAYS = {**settings.MEDIA_RETENTION_DAYS, waha_platform.tenant.tier.name: 30}
    data, mimetype, filename = SAMPLES["image"]
    # A price per byte-month that makes a small file's cost visible at money's two decimals.
    settings.MEDIA_PRICE_PER_GB_MONTH = 1024 ** 3
    media = waha_platform.settled(waha_platform.receive("image", data, mimetype, filename))
    months_before = _months_this_month()
    usage = waha_platform.api.get("/api/v1/usage").json()
    months_after = _months_this_month()
    assert usage["usage"]["media_bytes"] == len(data)
    # The bytes kept, pro-rated over the month so far (docs/media.md, "Cost").
    cent = Decimal("0.01")
    assert len(data) * months_before - cent <= Decimal(usage["media"]) <= len(data) * months_after + cent
    assert any(p.is_file() for p in media_root.rglob("*"))

    # a day before the retention ends, nothing goes
    assert cleanup_expired_media(now=timezone.now() + timedelta(days=29)) == 0
    assert any(p.is_file() for p in media_root.rglob("*"))

    # past it, the file and its thumbnail go, and the message says so
    assert cleanup_expired_media(now=timezone.now() + timedelta(days=31)) == 1

    assert not [p for p in media_root.rglob("*") if p.is_file()]
    body = waha_platform.api.get(f"/api/v1/messages/{media.message_id}").json()
    assert body["media"]["status"] == "deleted" and "30 days" in body["media"]["reason"]
    assert waha_platform.api.get(f"/api/v1/media/{media.pk}").status_code == 404
    assert waha_platform.api.get("/api/v1/usage").json()["usage"]["media_bytes"] == 0


def test_a_blob_shared_with_a_newer_file_stays_until_the_last_one_goes(waha_platform, media_root, settings):
    settings.MEDIA_RETENTION_DAYS = {**settings.MEDIA_RETENTION_DAYS, waha_platform.tenant.tier.name: 30}
    data, mimetype, filename = SAMPLES["document"]
    old = waha_platform.settled(waha_platform.receive("document", data, mimetype, filename))
    from messaging.models import MediaFile
    MediaFile.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=31))  # received a month ago
    new = waha_platform.settled(waha_platform.receive("document", data, mimetype, filename))

    assert cleanup_expired_media() == 1

    assert MediaFile.objects.get(pk=old.pk).status == "deleted"
    download = waha_platform.api.get(f"/api/v1/media/{new.pk}")
    assert b"".join(download.streaming_content) == data
