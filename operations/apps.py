from django.apps import AppConfig


class OperationsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "operations"
    verbose_name = "Operations"

    def ready(self):
        from operations import services, subscribers
        from waplatform.alerts import register_alert_backend
        from waplatform.events import register_subscriber

        register_subscriber("operations", subscribers.on_event)
        register_alert_backend(services)
