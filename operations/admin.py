from django.contrib import admin

from operations.models import Alert
from waplatform.admin_display import clipped


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    """Read-only: alerts open and resolve themselves (operations.services) as their causes come and go."""

    list_display = ["kind", clipped("key", 30), clipped("message", 80), "opened_at", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]
    search_fields = ["key", "message"]
    date_hierarchy = "opened_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
