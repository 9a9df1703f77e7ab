from django.apps import AppConfig


class TenantsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "tenants"

    def ready(self):
        from django.contrib.auth.signals import user_login_failed

        from tenants import auth_failures

        user_login_failed.connect(auth_failures.on_login_failed, dispatch_uid="tenants.auth_failures")

        from django.db.models.signals import post_delete, post_save

        from tenants.key_cache_signals import forget_cached_keys
        from tenants.models import ApiKey, Tenant, Tier

        for model in (ApiKey, Tenant, Tier):
            post_save.connect(forget_cached_keys, sender=model, dispatch_uid=f"tenants.key_cache.save.{model.__name__}")
            post_delete.connect(forget_cached_keys, sender=model,
                                dispatch_uid=f"tenants.key_cache.delete.{model.__name__}")
