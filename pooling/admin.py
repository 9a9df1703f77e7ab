from django.contrib import admin, messages

from pooling import services
from pooling.models import Alert, Assignment, PoolSnapshot, SessionEvent, Slot, WhatsAppSession


class LiveAssignmentInline(admin.TabularInline):
    model = Assignment
    fields = ["tenant", "started_at", "ended_at", "end_reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "assignments (history)"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Slot)
class SlotAdmin(admin.ModelAdmin):
    list_display = ["__str__", "tier", "state", "dialect", "provisioner", "used_of_capacity", "base_url",
                    "last_health_at", "consecutive_failures"]
    list_filter = ["tier", "state", "dialect", "provisioner"]
    search_fields = ["name", "base_url"]
    list_select_related = ["tier"]
    readonly_fields = ["used", "state", "pid", "port", "consecutive_failures", "provision_attempts",
                       "last_health_at", "last_health_error", "created_at", "state_changed_at", "empty_since",
                       "retired_at"]
    inlines = [LiveAssignmentInline]
    actions = ["health_check_now", "drain", "retire"]

    @admin.display(description="used / capacity")
    def used_of_capacity(self, obj):
        return f"{obj.used} / {obj.capacity}"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        # A slot added here is an operator's bridge server: checked at once like add_slot.
        try:
            slot = services.register_static_slot(
                dialect=obj.dialect, base_url=obj.base_url, api_key=obj.api_key, tier=obj.tier,
                capacity=obj.capacity, name=obj.name,
            )
        except services.SlotUnreachable as exc:
            obj.state = Slot.State.DOWN
            obj.provisioner = Slot.Provisioner.STATIC
            obj.last_health_error = str(exc)
            super().save_model(request, obj, form, change)
            self.message_user(request, f"Saved, but the server did not answer: {exc}", messages.ERROR)
            return
        obj.pk = slot.pk
        obj.refresh_from_db()

    @admin.action(description="Health-check now", permissions=["change"])
    def health_check_now(self, request, queryset):
        report = services.run_health_checks(slot_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(request, "; ".join(report.lines()))

    @admin.action(description="Drain (move tenants off, then retire)", permissions=["change"])
    def drain(self, request, queryset):
        for slot in queryset:
            moved = services.drain_slot(slot_id=slot.pk)
            self.message_user(request, f"Drained {slot}: moved {moved} tenant(s).")

    @admin.action(description="Retire (empty slots only)", permissions=["change"])
    def retire(self, request, queryset):
        for slot in queryset:
            done = services.retire_slot(slot_id=slot.pk)
            level = messages.INFO if done else messages.WARNING
            self.message_user(request, f"{slot}: {'retired' if done else 'not retired (still has tenants)'}", level)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "slot", "started_at", "ended_at", "end_reason"]
    list_filter = ["end_reason", "slot__tier", ("ended_at", admin.EmptyFieldListFilter)]
    search_fields = ["tenant__slug", "tenant__name", "slot__name"]
    list_select_related = ["tenant", "slot"]


class SessionEventInline(admin.TabularInline):
    model = SessionEvent
    fields = ["at", "status", "slot", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0


@admin.register(WhatsAppSession)
class WhatsAppSessionAdmin(ReadOnlyAdmin):
    list_display = ["name", "tenant", "status", "placement", "wanted", "last_activity_at", "status_changed_at"]
    list_filter = ["status", "placement", "wanted", "tenant__tier"]
    search_fields = ["name", "tenant__slug", "tenant__name", "phone_number_id"]
    list_select_related = ["tenant"]
    inlines = [SessionEventInline]


@admin.register(PoolSnapshot)
class PoolSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["taken_at", "tier", "capacity", "used", "waiting", "utilisation", "slots_by_state"]
    list_filter = ["tier"]
    date_hierarchy = "taken_at"


@admin.register(Alert)
class AlertAdmin(ReadOnlyAdmin):
    list_display = ["kind", "key", "message", "opened_at", "resolved_at"]
    list_filter = ["kind", ("resolved_at", admin.EmptyFieldListFilter)]


# A tier change must move the tenant's session to the new pool, which only
# pooling knows how to do; tenants cannot import pooling (DESIGN.md order).
from tenants.admin import TenantAdmin as _BaseTenantAdmin  # noqa: E402
from tenants.models import Tenant  # noqa: E402

admin.site.unregister(Tenant)


@admin.register(Tenant)
class TenantAdmin(_BaseTenantAdmin):
    def save_model(self, request, obj, form, change):
        if change and "tier" in form.changed_data:
            new_tier = obj.tier
            obj.tier_id = form.initial["tier"]
            super().save_model(request, obj, form, change)
            services.change_tier(tenant=obj, tier=new_tier)
            obj.refresh_from_db()
            self.message_user(request, f"{obj} moved to the {new_tier.name} pool.")
            return
        super().save_model(request, obj, form, change)
