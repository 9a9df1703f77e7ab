"""rq entry points: take ids, re-read, and do nothing when the work is already done."""

from messaging import services, webhooks_out
from messaging.services import media, media_retention, recovery


def deliver_message(message_id: int) -> str:
    return services.deliver_message(message_id=message_id)


def deliver_batch(tenant_id: int, lane: int | None = None) -> str:
    """Every due message of one lane of a tenant's sends (messaging.services.batches)."""
    return services.deliver_batch(tenant_id=tenant_id, lane=lane)


def deliver_webhook(delivery_id: int) -> str:
    return webhooks_out.deliver_webhook(delivery_id=delivery_id)


def resume_tenant(tenant_id: int) -> str:
    """After a reactivation (tenants.services.reactivate_tenant)."""
    resumed = services.resume_tenant(tenant_id=tenant_id)
    return f"messages={resumed.messages} deliveries={resumed.deliveries}"


def sweep() -> list[str]:
    """Every minute on `maintenance` (waplatform/cron.py)."""
    return services.sweep().lines()


def reclaim_orphaned_sends() -> int:
    """Every ORPHAN_CHECK_SECONDS on `maintenance`: sends whose worker died get a job at once."""
    return recovery.reclaim_orphaned_sends()


def requeue_lost_jobs() -> list[str]:
    """Enqueued when Redis lost its data (waplatform.redis_epoch)."""
    return recovery.requeue_lost_jobs().lines()


def fetch_media(media_id: int) -> str:
    """On the `media` queue: download one inbound file from the bridge and store it."""
    return media.fetch_media(media_id=media_id)


def sweep_media() -> int:
    """Every minute on `maintenance`: pending downloads whose job was lost."""
    return media.sweep_media()


def cleanup_media() -> int:
    """Hourly on `maintenance`: files past their tier's retention (docs/media.md)."""
    return media_retention.cleanup_expired_media()


def wake_snoozed() -> int:
    """Every minute on `maintenance` (waplatform/cron.py): snoozes that ended reopen their conversation."""
    return services.wake_snoozed()
