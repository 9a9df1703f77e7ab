"""The live-inbox subscriber of the event bus: every event goes to the tenant's Channels group."""

from waplatform.channels import group_send

# Staff sockets join it; operations sends alerts to it.
STAFF_GROUP = "staff"


def tenant_group(tenant_id: int) -> str:
    return f"tenant-{tenant_id}"


def broadcast_event(event: dict) -> None:
    """An event subscriber (MessagingConfig.ready()). Consumers handle it in `event_message` (type "event.message")."""
    if not event.get("tenant"):
        return
    group_send(tenant_group(event["tenant"]), {"type": "event.message", "event": event})
