"""Event-bus subscribers of the operations app."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from operations import metrics

STAFF_GROUP = "staff"


def on_event(event: dict) -> None:
    metrics.observe_event(event)
    if event["type"].startswith("alert."):
        layer = get_channel_layer()
        if layer is not None:
            async_to_sync(layer.group_send)(STAFF_GROUP, {"type": "event.message", "event": event})
        if settings.ALERT_WEBHOOK_URL:
            from operations import jobs
            from waplatform.queues import enqueue

            # Already after commit (the bus runs on commit), so plain enqueue is right.
            enqueue(jobs.post_alert, event, queue="webhooks")
