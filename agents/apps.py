from django.apps import AppConfig


class AgentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "agents"

    def ready(self):
        from agents import demo, selectors, subscribers
        from pooling.costs import register_cost_contributor
        from tenants.demo import register_demo_seeder
        from waplatform.events import register_subscriber

        register_subscriber("agents", subscribers.on_event)
        register_cost_contributor("ai", selectors.ai_costs_by_tenant)
        register_demo_seeder("agents", demo.seed)
