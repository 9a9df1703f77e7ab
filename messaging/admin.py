from django.contrib import admin

from messaging import webhooks_out
from messaging.models import Contact, Conversation, Message, PendingStatus, WebhookDelivery, WebhookEndpoint


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    list_display = ["wa_id", "name", "tenant", "created_at"]
    list_select_related = ["tenant"]
    search_fields = ["wa_id", "name"]
    list_filter = ["tenant"]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["pk", "tenant", "contact", "last_message_at", "last_inbound_at", "unread_count"]
    list_select_related = ["tenant", "contact"]
    list_filter = ["tenant"]
    raw_id_fields = ["contact"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["pk", "tenant", "direction", "type", "status", "contact", "attempts", "accepted_at", "error_code"]
    list_select_related = ["tenant", "contact"]
    list_filter = ["status", "direction", "type", "tenant"]
    search_fields = ["provider_message_id", "idempotency_key", "contact__wa_id"]
    raw_id_fields = ["conversation", "contact"]
    # Status changes go through services (monotonic, with events); the admin only reads them.
    readonly_fields = [f.name for f in Message._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(PendingStatus)
class PendingStatusAdmin(admin.ModelAdmin):
    list_display = ["provider_message_id", "status", "tenant", "created_at"]
    list_filter = ["status"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ["url", "tenant", "event_types", "active", "created_at"]
    list_filter = ["active", "tenant"]
    exclude = ["secret"]


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["pk", "event_type", "endpoint", "status", "attempts", "last_status_code", "next_attempt_at",
                    "created_at"]
    list_select_related = ["endpoint"]
    list_filter = ["status", "event_type"]
    search_fields = ["event_id"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Replay selected deliveries (same event id)", permissions=["change"])
    def replay(self, request, queryset):
        replayed = 0
        for delivery in queryset:
            before = delivery.status
            webhooks_out.replay_delivery(delivery=delivery)
            replayed += before not in WebhookDelivery.OPEN
        self.message_user(request, f"{replayed} deliveries queued again; open ones were left alone.")
