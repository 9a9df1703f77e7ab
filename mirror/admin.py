from django.contrib import admin
from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from mirror.models import Backlog, DeadLetter, MirrorStatus
from waplatform.admin_actions import ActionsWhereTheyApply
from waplatform.admin_display import clipped


@admin.register(MirrorStatus)
class MirrorStatusAdmin(admin.ModelAdmin):
    list_display = ["tenant", clipped("last_event_type", 30), "last_event_at", "last_synced_at", "lag", "behind_for",
                    "consecutive_failures", "total_failures", "open_dead_letters", "last_error_at"]
    list_select_related = ["tenant"]
    search_fields = ["tenant__slug", "tenant__name", "last_event_id"]
    readonly_fields = [f.name for f in MirrorStatus._meta.fields]

    def has_add_permission(self, request):
        return False

    def get_queryset(self, request):
        open_letters = (DeadLetter.objects.filter(tenant_id=OuterRef("tenant_id"), resolved_at__isnull=True)
                        .order_by().values("tenant_id").annotate(n=Count("pk")).values("n"))
        return super().get_queryset(request).annotate(open_letters=Coalesce(Subquery(open_letters), 0))

    @admin.display(description="lag (s)")
    def lag(self, obj):
        return None if obj.lag_seconds is None else round(obj.lag_seconds, 2)

    @admin.display(description="failing for")
    def behind_for(self, obj):
        # While writes fail, the mirror falls further behind than the last lag shows.
        if not obj.consecutive_failures or not obj.last_synced_at:
            return "-"
        return str(timezone.now() - obj.last_synced_at).split(".")[0]

    @admin.display(description="open dead letters", ordering="open_letters")
    def open_dead_letters(self, obj):
        return obj.open_letters


@admin.register(DeadLetter)
class DeadLetterAdmin(ActionsWhereTheyApply, admin.ModelAdmin):
    actions_not_applying = {"retry": {"resolved_at__isempty": {"0"}}}
    list_display = ["pk", "tenant", "kind", "object_id", clipped("event_type", 30), "attempts", "created_at",
                    "retried_at", "resolved_at", clipped("error", 60)]
    list_select_related = ["tenant"]
    list_filter = [("resolved_at", admin.EmptyFieldListFilter), "kind", "tenant"]
    search_fields = ["event_id", "error"]
    readonly_fields = [f.name for f in DeadLetter._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Retry the write now", permissions=["change"])
    def retry(self, request, queryset):
        # Here, not at the top: admin modules load in every process (autodiscovery), and the
        # mirror's services bring the Firestore client and gRPC (~50 MB) with them.
        from mirror import services

        count = 0
        for dead_letter in queryset.filter(resolved_at__isnull=True):
            services.retry_dead_letter(dead_letter=dead_letter)
            count += 1
        resolved = len(queryset) - count
        self.message_user(request, f"{count} mirror write(s) queued again; each resolves when it succeeds."
                          + (f" {resolved} already resolved, left alone." if resolved else ""))


@admin.register(Backlog)
class BacklogAdmin(admin.ModelAdmin):
    list_display = ["pk", "tenant", "kind", "object_id", "created_at"]
    list_select_related = ["tenant"]
    readonly_fields = [f.name for f in Backlog._meta.fields]

    def has_add_permission(self, request):
        return False
