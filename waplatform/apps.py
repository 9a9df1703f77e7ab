from django.apps import AppConfig


class WaplatformConfig(AppConfig):
    name = "waplatform"

    def ready(self):
        from waplatform import checks  # noqa: F401  (registers the system checks)
