from django.contrib import admin
from django.db.models import Count
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers, patch_cache_control

from tenants.models import ApiKey, Membership, Tenant, Tier
from tenants.services import issue_api_key, reactivate_tenant, revoke_api_key, suspend_tenant


@admin.register(Tier)
class TierAdmin(admin.ModelAdmin):
    list_display = [
        "display_name",
        "name",
        "tenants_per_slot",
        "max_slots",
        "send_queue",
        "idle_slot_timeout_minutes",
        "monthly_price",
        "slot_cost_per_hour",
        "api_rate_limit_per_minute",
    ]
    search_fields = ["name", "display_name"]


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "tier", "status", "member_count", "created_at"]
    list_filter = ["tier", "status"]
    search_fields = ["name", "slug"]
    list_select_related = ["tier"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline, ApiKeyInline]
    actions = ["issue_key", "suspend", "reactivate"]
    # Status changes go through the suspend/reactivate actions (services): reactivation
    # must enqueue again what waited, which a plain save would not.
    readonly_fields = ["status"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_total=Count("memberships"))

    @admin.display(description="members", ordering="member_total")
    def member_count(self, obj):
        return obj.member_total

    @admin.action(description="Issue a new API key (shown once)", permissions=["change"])
    def issue_key(self, request, queryset):
        # On a page of its own, answered to this POST only: a `messages` flash would sit in the
        # cookie-backed message store (and any proxy or browser cache) until it is displayed.
        issued_keys = [(tenant, issue_api_key(tenant=tenant, name=f"admin {timezone.now():%Y-%m-%d}"))
                       for tenant in queryset.order_by("name")]
        response = TemplateResponse(request, "admin/tenants/tenant/issued_keys.html", {
            **self.admin_site.each_context(request), "title": "New API keys", "issued_keys": issued_keys,
        })
        add_never_cache_headers(response)
        patch_cache_control(response, no_store=True)
        return response


    @admin.action(description="Suspend (sends and webhooks wait, agents stop, API writes refused)",
                  permissions=["change"])
    def suspend(self, request, queryset):
        for tenant in queryset:
            suspend_tenant(tenant=tenant)
        self.message_user(request, f"Suspended {queryset.count()} tenant(s).", messages.WARNING)

    @admin.action(description="Reactivate (what waited is sent)", permissions=["change"])
    def reactivate(self, request, queryset):
        for tenant in queryset:
            reactivate_tenant(tenant=tenant)
        self.message_user(request, f"Reactivated {queryset.count()} tenant(s).")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant__tier"]
    search_fields = ["user__username", "tenant__name", "tenant__slug"]
    list_select_related = ["user", "tenant"]
    autocomplete_fields = ["user", "tenant"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["prefix", "name", "tenant", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "tenant__tier"]
    search_fields = ["prefix", "name", "tenant__slug", "tenant__name"]
    list_select_related = ["tenant"]
    readonly_fields = ["tenant", "prefix", "key_hash", "created_at", "last_used_at", "revoked_at"]
    fields = ["tenant", "name", "prefix", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        # Keys are issued from the tenant page so the plaintext can be shown once.
        return False

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        for api_key in queryset:
            revoke_api_key(api_key=api_key)
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
