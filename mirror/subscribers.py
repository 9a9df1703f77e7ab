"""The Firestore mirror's entry on the event bus (registered in its AppConfig.ready())."""

from django.conf import settings


def on_event(event: dict) -> None:
    """Enqueue the mirror jobs an event calls for. Off (and free) while FIRESTORE_PROJECT is unset."""
    if not settings.FIRESTORE_PROJECT:
        return
    from mirror import services

    services.enqueue_for_event(event=event)
