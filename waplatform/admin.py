from django.contrib import admin

from waplatform.models import OutboxEvent
from waplatform.admin_display import clipped


class UndeliveredFilter(admin.SimpleListFilter):
    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [("pending", "Pending"), ("delivered", "Delivered")]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(delivered_at__isnull=True)
        if self.value() == "delivered":
            return queryset.filter(delivered_at__isnull=False)
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(admin.ModelAdmin):
    """Read-only: the relay owns these rows; an operator looks here for which subscriber fails and why."""

    list_display = ["id", clipped("type", 30), "tenant_id", clipped("ordering_key", 30), "created_at", "delivered_at",
                    "attempts", clipped("pending", 40)]
    list_filter = [UndeliveredFilter, "type"]
    search_fields = ["event_id", "ordering_key"]
    readonly_fields = [f.name for f in OutboxEvent._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
