from django.apps import AppConfig


class MessagingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "messaging"

    def ready(self):
        from django.db.models.signals import post_delete, post_save

        from messaging import live, selectors, webhooks_out
        from messaging.models import WebhookEndpoint
        from messaging.services.resume import schedule_resume
        from messaging.services import media_retention
        from pooling.costs import register_cost_contributor, register_usage_counter
        from tenants.services import register_reactivation_hook
        from waplatform.events import register_subscriber

        register_subscriber("messaging.live", live.broadcast_event)
        register_subscriber("messaging.webhooks", webhooks_out.fan_out_event)
        post_save.connect(webhooks_out.forget_endpoints, sender=WebhookEndpoint,
                          dispatch_uid="messaging.webhook_endpoints.save")
        post_delete.connect(webhooks_out.forget_endpoints, sender=WebhookEndpoint,
                            dispatch_uid="messaging.webhook_endpoints.delete")
        register_cost_contributor("messages", selectors.message_costs_by_tenant)
        register_reactivation_hook("messaging", schedule_resume)
        register_cost_contributor("media", media_retention.media_costs_by_tenant)
        register_usage_counter("media_bytes", media_retention.stored_bytes_for_tenant)
