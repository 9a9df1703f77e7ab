from django.apps import AppConfig


class PoolingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "pooling"

    def ready(self):
        from pooling import demo
        from tenants.demo import register_demo_seeder

        register_demo_seeder("pooling", demo.seed)
