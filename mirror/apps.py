from django.apps import AppConfig


class MirrorConfig(AppConfig):
    """The optional Firestore mirror of each tenant's inbox (docs/firestore.md)."""

    name = "mirror"
    verbose_name = "Firestore mirror"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from mirror import subscribers
        from waplatform.events import register_subscriber

        register_subscriber("mirror", subscribers.on_event)
