"""Event-bus subscribers of the operations app."""

from django.conf import settings

from messaging.live import STAFF_GROUP
from operations import metrics
from waplatform.channels import group_send
from waplatform.queues import enqueue


def on_event(event: dict) -> None:
    metrics.observe_event(event)
    if event["type"].startswith("alert."):
        group_send(STAFF_GROUP, {"type": "event.message", "event": event})
        if settings.ALERT_WEBHOOK_URL:
            # Already after commit (the bus runs on commit), so plain enqueue is right.
            enqueue("operations.jobs.post_alert", event, queue="webhooks")
