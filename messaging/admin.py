from django import forms
from django.contrib import admin

from messaging import webhooks_out
from messaging.models import Contact, Conversation, Message, PendingStatus, WebhookDelivery, WebhookEndpoint
from waplatform.admin_actions import ActionsWhereTheyApply
from waplatform.admin_display import clip, clipped


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
    list_display = ["pk", "tenant", "direction", "type", "text_preview", "status", "contact", "accepted_at",
                    clipped("error_code", 20)]
    list_select_related = ["tenant", "contact"]
    list_filter = ["status", "direction", "type", "tenant"]
    search_fields = ["provider_message_id", "idempotency_key", "contact__wa_id"]
    raw_id_fields = ["conversation", "contact"]
    # Status changes go through services (monotonic, with events); the admin only reads them.
    readonly_fields = [f.name for f in Message._meta.fields]

    def has_add_permission(self, request):
        return False

    @admin.display(description="text")
    def text_preview(self, obj):
        return clip(obj.text, 60)


@admin.register(PendingStatus)
class PendingStatusAdmin(admin.ModelAdmin):
    list_display = [clipped("provider_message_id", 40, description="provider message id"), "status", "tenant",
                    "created_at"]
    list_select_related = ["tenant"]
    list_filter = ["status"]


class WebhookEndpointForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        exclude = ["secret"]

    def clean_url(self) -> str:
        # The same check the service makes, here so that a refused URL is a form error, not a 500.
        try:
            return webhooks_out.check_url(self.cleaned_data["url"])
        except webhooks_out.InvalidWebhookUrl as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    """Writes go through webhooks_out's services, which check the URL against the egress rules."""

    form = WebhookEndpointForm
    list_display = [clipped("url", 50, description="URL"), "tenant", clipped("event_types", 40), "active", "created_at"]
    list_select_related = ["tenant"]
    list_filter = ["active", "tenant"]

    def save_model(self, request, obj, form, change):
        if change:
            changes = {name: form.cleaned_data[name] for name in form.changed_data}
            webhooks_out.update_endpoint(endpoint=obj, **changes)
            return
        created = webhooks_out.create_endpoint(
            tenant=form.cleaned_data["tenant"], url=form.cleaned_data["url"],
            event_types=form.cleaned_data.get("event_types"), description=form.cleaned_data.get("description", ""),
            active=form.cleaned_data.get("active", True),
        )
        # The admin logs and redirects with the object it passed in: make it the saved row.
        for field in WebhookEndpoint._meta.concrete_fields:
            setattr(obj, field.attname, getattr(created, field.attname))
        obj._state.adding = False
        obj._state.db = created._state.db

    def delete_model(self, request, obj):
        webhooks_out.delete_endpoint(endpoint=obj)

    def delete_queryset(self, request, queryset):
        for endpoint in queryset:
            webhooks_out.delete_endpoint(endpoint=endpoint)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ActionsWhereTheyApply, admin.ModelAdmin):
    actions_not_applying = {"replay": {"status__exact": {str(s) for s in WebhookDelivery.OPEN}}}
    list_display = ["pk", "event_type", clipped("endpoint", 50), "status", "attempts", "last_status_code",
                    "next_attempt_at", "created_at"]
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
