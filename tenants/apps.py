from django.apps import AppConfig


class TenantsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tenants"

    def ready(self):
        from django.contrib.auth.signals import user_login_failed

        from tenants import auth_failures

        user_login_failed.connect(auth_failures.on_login_failed, dispatch_uid="tenants.auth_failures")

        from tenants import openapi  # noqa: F401  (registers the API key scheme with drf-spectacular)
