from django.apps import AppConfig


class TenantsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tenants"

    def ready(self):
        from tenants import openapi  # noqa: F401  (registers the API key scheme with drf-spectacular)
