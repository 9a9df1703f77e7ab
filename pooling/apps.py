from django.apps import AppConfig


class PoolingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "pooling"

    def ready(self):
        from django.db.models.signals import post_delete

        from pooling import demo, webhook_routes
        from pooling.models import Assignment, WhatsAppSession
        from tenants.demo import register_demo_seeder
        from tenants.models import Tenant

        register_demo_seeder("pooling", demo.seed)
        # Deletes only: nothing else makes a kept route wrong (pooling/webhook_routes.py).
        for model in (Tenant, WhatsAppSession, Assignment):
            post_delete.connect(webhook_routes.forget_routes, sender=model,
                                dispatch_uid=f"pooling.webhook_routes.delete.{model.__name__}")
