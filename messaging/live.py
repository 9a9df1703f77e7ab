"""The live-inbox subscriber of the event bus: every event goes to the tenant's Channels group."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def tenant_group(tenant_id: int) -> str:
    return f"tenant-{tenant_id}"


def broadcast_event(event: dict) -> None:
    """An EVENT_SUBSCRIBERS entry. Consumers handle it in `event_message` (type "event.message")."""
    layer = get_channel_layer()
    if layer is None or not event.get("tenant"):
        return
    async_to_sync(layer.group_send)(tenant_group(event["tenant"]), {"type": "event.message", "event": event})
