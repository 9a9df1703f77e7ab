"""rq entry points: take ids, re-read, and do nothing when the work is already done."""

from messaging import services, webhooks_out


def deliver_message(message_id: int) -> str:
    return services.deliver_message(message_id=message_id)


def deliver_webhook(delivery_id: int) -> str:
    return webhooks_out.deliver_webhook(delivery_id=delivery_id)


def sweep() -> list[str]:
    """Every minute on `maintenance` (waplatform/cron.py)."""
    return services.sweep().lines()


def wake_snoozed() -> int:
    """Every minute on `maintenance` (waplatform/cron.py): snoozes that ended reopen their conversation."""
    return services.wake_snoozed()
