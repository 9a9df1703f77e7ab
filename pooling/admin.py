from django import forms
from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html

from pooling import services
from pooling.models import Assignment, CloudNumber, PoolSnapshot, SessionEvent, Slot, WhatsAppSession
from waplatform.admin_actions import ActionsWhereTheyApply
from waplatform.admin_display import clipped

# History inlines show the latest rows only: a slot or a session gathers history
# for as long as it lives, and the change page must not grow with it.
HISTORY_INLINE_ROWS = 20


class LatestRowsFormSet(BaseInlineFormSet):
    def get_queryset(self):
        return super().get_queryset()[:HISTORY_INLINE_ROWS]


def _history_link(model, lookup: str, pk: int, label: str) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return format_html('<a href="{}?{}={}">{}</a>', url, lookup, pk, label)


class LiveAssignmentInline(admin.TabularInline):
    model = Assignment
    formset = LatestRowsFormSet
    fields = ["tenant", "started_at", "ended_at", "end_reason"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = f"assignments (latest {HISTORY_INLINE_ROWS}; the full history is linked above)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("tenant")

    def has_add_permission(self, request, obj=None):
        return False


class SlotForm(forms.ModelForm):
    class Meta:
        model = Slot
        fields = "__all__"

    def clean_capacity(self):
        # Checked again under the row lock by services.update_slot; this is for a readable form error.
        capacity = self.cleaned_data["capacity"]
        if self.instance.pk and capacity < self.instance.used:
            raise forms.ValidationError(f"{self.instance.used} tenants are on this slot; move some first.")
        return capacity


@admin.register(Slot)
class SlotAdmin(ActionsWhereTheyApply, admin.ModelAdmin):
    list_display = ["__str__", "tier", "state", "dialect", "provisioner", "used_of_capacity",
                    clipped("base_url", 40, description="base URL"),
                    "last_health_at", "consecutive_failures"]
    actions_not_applying = {
        "health_check_now": {"state__exact": {"retired"}},
        "drain": {"state__exact": {"retired", "draining"}},
        "retire": {"state__exact": {"retired"}},
    }
    list_filter = ["tier", "state", "dialect", "provisioner"]
    search_fields = ["name", "base_url"]
    list_select_related = ["tier"]
    readonly_fields = ["used", "state", "pid", "port", "consecutive_failures", "provision_attempts",
                       "last_health_at", "last_health_error", "created_at", "state_changed_at", "empty_since",
                       "retired_at"]
    form = SlotForm
    inlines = [LiveAssignmentInline]
    actions = ["health_check_now", "drain", "retire"]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "assignment_history"]

    @admin.display(description="used / capacity")
    def used_of_capacity(self, obj):
        return f"{obj.used} / {obj.capacity}"

    @admin.display(description="assignment history")
    def assignment_history(self, obj):
        if not obj.pk:
            return "—"
        return _history_link(Assignment, "slot__id__exact", obj.pk, "every assignment of this slot")

    def save_model(self, request, obj, form, change):
        if change:
            # Not obj.save(): it would write back the `used` read when the form loaded,
            # undoing placements made meanwhile. The service writes only the edited fields.
            services.update_slot(
                slot_id=obj.pk, changes={name: getattr(obj, name) for name in form.changed_data}
            )
            obj.refresh_from_db()
            return
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
    formset = LatestRowsFormSet
    fields = ["at", "status", "slot", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    max_num = 0
    verbose_name_plural = f"events (latest {HISTORY_INLINE_ROWS}; the full history is linked above)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("slot")


@admin.register(WhatsAppSession)
class WhatsAppSessionAdmin(ReadOnlyAdmin):
    list_display = ["name", "tenant", "status", "placement", "wanted", "last_activity_at", "status_changed_at"]
    list_filter = ["status", "placement", "wanted", "tenant__tier"]
    search_fields = ["name", "tenant__slug", "tenant__name", "phone_number_id"]
    list_select_related = ["tenant"]
    readonly_fields = ["event_history"]
    inlines = [SessionEventInline]

    @admin.display(description="event history")
    def event_history(self, obj):
        return _history_link(SessionEvent, "session__id__exact", obj.pk, "every event of this session")


@admin.register(SessionEvent)
class SessionEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "session", "status", "slot", clipped("note", 60)]
    list_filter = ["status"]
    search_fields = ["session__name", "note"]
    list_select_related = ["session", "slot"]
    date_hierarchy = "at"


class CloudNumberForm(forms.ModelForm):
    class Meta:
        model = CloudNumber
        fields = ["phone_number_id", "tenant"]


@admin.register(CloudNumber)
class CloudNumberAdmin(admin.ModelAdmin):
    """Assigning numbers of the operator's Meta app to tenants; saves and deletes go through services.

    A tenant's own token (claimed numbers) is never shown; moving a number means
    releasing it (delete) and assigning it again.
    """

    list_display = ["phone_number_id", "tenant", "source", "display_phone_number", "assigned_at"]
    list_filter = ["source"]
    search_fields = ["phone_number_id", "tenant__slug", "tenant__name"]
    list_select_related = ["tenant"]
    autocomplete_fields = ["tenant"]
    form = CloudNumberForm
    actions = None

    def get_readonly_fields(self, request, obj=None):
        return ["phone_number_id", "tenant", "source", "display_phone_number", "assigned_at"] if obj else []

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) or ["phone_number_id", "tenant"]

    def save_model(self, request, obj, form, change):
        if change:
            return
        # The form's unique check already refused a held number; this is the race.
        try:
            number = services.assign_number(phone_number_id=obj.phone_number_id, tenant=obj.tenant)
        except services.NumberError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        obj.pk = number.pk
        obj.refresh_from_db()

    def delete_model(self, request, obj):
        try:
            services.release_number(phone_number_id=obj.phone_number_id)
        except services.NumberError as exc:
            self.message_user(request, str(exc), messages.ERROR)


@admin.register(PoolSnapshot)
class PoolSnapshotAdmin(ReadOnlyAdmin):
    list_display = ["taken_at", "tier", "capacity", "used", "waiting", "utilisation", clipped("slots_by_state", 60)]
    list_filter = ["tier"]
    list_select_related = ["tier"]
    date_hierarchy = "taken_at"


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
