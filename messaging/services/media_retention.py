"""Media retention per tier (the hourly cleanup) and what a tenant's stored files cost.

A blob (tenant, sha256) is stored once and shared by every file row with those
bytes: it is deleted with its last stored row, and counted once in usage and cost.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from messaging.media import storage
from messaging.models import MediaFile
from messaging.services.media import publish_for_media
from tenants.models import Tenant


def retention_days(tier_name: str) -> int:
    return settings.MEDIA_RETENTION_DAYS.get(tier_name, settings.MEDIA_RETENTION_DEFAULT_DAYS)


def cleanup_expired_media(*, now: datetime | None = None) -> int:
    """Delete files older than their tenant's tier retention; a blob goes with its last row. Hourly."""
    now = now or timezone.now()
    deleted = 0
    tiers = Tenant.objects.values_list("tier__name", flat=True).distinct()
    for tier_name in set(tiers):
        cutoff = now - timedelta(days=retention_days(tier_name))
        expired = (MediaFile.objects.filter(tenant__tier__name=tier_name, created_at__lt=cutoff)
                   .filter(Q(status=MediaFile.Status.STORED) | Q(status=MediaFile.Status.FAILED))
                   .order_by("pk").values_list("pk", flat=True)[: settings.SWEEP_BATCH_SIZE])
        for media_id in list(expired):
            deleted += delete_media(media_id=media_id, reason=f"Deleted after the {tier_name} tier's "
                                                              f"{retention_days(tier_name)} days of retention.")
    return deleted


def delete_media(*, media_id: int, reason: str) -> int:
    """Mark one file deleted and remove its bytes unless another stored row of the tenant shares them."""
    with transaction.atomic():
        media = MediaFile.objects.select_for_update().filter(pk=media_id).exclude(status=MediaFile.Status.DELETED).first()
        if media is None:
            return 0
        keys = [media.storage_key, media.thumbnail_key]
        shared = media.sha256 and MediaFile.objects.filter(
            tenant_id=media.tenant_id, sha256=media.sha256, status=MediaFile.Status.STORED).exclude(pk=media.pk).exists()
        MediaFile.objects.filter(pk=media.pk).update(status=MediaFile.Status.DELETED, reason=reason,
                                                      deleted_at=timezone.now(), storage_key="", thumbnail_key="")
        publish_for_media(media.pk, "message.media_deleted")
    if not shared:
        # After commit: a crash between the two leaves an orphan blob, never a row without bytes.
        for key in keys:
            storage.delete_blob(key)
    return 1


def stored_bytes_by_tenant(*, tenant_ids: list[int] | None = None) -> dict[int, int]:
    """Bytes each tenant keeps in storage now, counting shared blobs once (one query)."""
    rows = MediaFile.objects.filter(status=MediaFile.Status.STORED)
    if tenant_ids is not None:
        rows = rows.filter(tenant_id__in=tenant_ids)
    blobs = rows.values("tenant_id", "sha256", "size").distinct().order_by()
    totals: dict[int, int] = {}
    for row in blobs:
        totals[row["tenant_id"]] = totals.get(row["tenant_id"], 0) + (row["size"] or 0)
    return totals


def stored_bytes_for_tenant(*, tenant_id: int) -> int:
    """A usage counter (pooling.costs): GET /api/v1/usage's `usage.media_bytes`."""
    return stored_bytes_by_tenant(tenant_ids=[tenant_id]).get(tenant_id, 0)


def media_costs_by_tenant(*, since: datetime, tenant_ids: list[int] | None = None) -> dict[int, Decimal]:
    """A cost contributor (pooling.costs): bytes stored now x MEDIA_PRICE_PER_GB_MONTH, pro-rated
    over the time since `since` (a month start), so a tenant pays for the month as it goes."""
    now = timezone.now()
    months = Decimal(max(0.0, (now - since).total_seconds())) / Decimal(30 * 24 * 3600)
    price = Decimal(str(settings.MEDIA_PRICE_PER_GB_MONTH))
    gb = Decimal(1024 ** 3)
    return {tenant_id: (Decimal(size) / gb * price * months).quantize(Decimal("0.0001"))
            for tenant_id, size in stored_bytes_by_tenant(tenant_ids=tenant_ids).items()}
