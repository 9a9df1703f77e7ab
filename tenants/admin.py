from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.template.response import TemplateResponse
from django.utils import timezone
from django.contrib import messages

from tenants.models import ApiKey, Membership, Tenant, Tier
from tenants.services import issue_api_key, onboard_tenant, reactivate_tenant, revoke_api_key, suspend_tenant
from waplatform.admin_actions import ActionsWhereTheyApply
from waplatform.admin_display import clipped


class OnboardForm(forms.Form):
    name = forms.CharField(max_length=128)
    tier = forms.ModelChoiceField(queryset=Tier.objects.order_by("-tenants_per_slot"), to_field_name="name")
    slug = forms.SlugField(max_length=64, required=False, help_text="Leave empty to derive it from the name.")
    inbox_username = forms.CharField(max_length=150, help_text="The tenant's first inbox member (its owner).")
    inbox_email = forms.EmailField(required=False)


def _left_alone(count: int, why: str) -> str:
    return f"; {count} {why}, left as they were" if count else ""


def _key_page(request, admin_site, title: str, **context) -> TemplateResponse:
    """The secrets go on a page of their own, never into a flash message that could be re-shown."""
    response = TemplateResponse(request, "admin/tenants/tenant/shown_once.html",
                                {**admin_site.each_context(request), "title": title, **context})
    response["Cache-Control"] = "no-store"
    return response


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
class TenantAdmin(ActionsWhereTheyApply, admin.ModelAdmin):
    actions_not_applying = {
        "suspend": {"status__exact": {Tenant.Status.SUSPENDED}},
        "reactivate": {"status__exact": {Tenant.Status.ACTIVE}},
    }
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
    # The change page's overview (session, slot, usage, cost) is drawn by a template tag from
    # operations (templates/admin/tenants/tenant/change_form.html): tenants cannot import pooling.
    change_form_template = "admin/tenants/tenant/change_form.html"

    def add_view(self, request, form_url="", extra_context=None):
        """Adding a tenant is onboarding it: tenant, first API key and inbox owner, shown once."""
        if not self.has_add_permission(request):
            return super().add_view(request, form_url, extra_context)
        form = OnboardForm(request.POST or None, initial={"tier": "standard"})
        if request.method == "POST" and form.is_valid():
            v = form.cleaned_data
            try:
                done = onboard_tenant(name=v["name"], tier=v["tier"], slug=v["slug"],
                                      inbox_username=v["inbox_username"], inbox_email=v["inbox_email"])
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error(field if field in form.fields else None, errors)
            else:
                return _key_page(
                    request, self.admin_site, f"{done.tenant.name} is onboarded", tenant=done.tenant,
                    api_key=done.api_key.plaintext, username=done.user.get_username(), password=done.password,
                    next_steps=done.next_steps(settings.PUBLIC_BASE_URL),
                )
        return TemplateResponse(request, "admin/tenants/tenant/onboard.html", {
            **self.admin_site.each_context(request), "title": "Onboard a tenant", "form": form,
            "opts": self.model._meta,
        })

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_total=Count("memberships"))

    @admin.display(description="members", ordering="member_total")
    def member_count(self, obj):
        return obj.member_total

    @admin.action(description="Issue a new API key (shown once)", permissions=["change"])
    def issue_key(self, request, queryset):
        keys = [(tenant, issue_api_key(tenant=tenant, name=f"admin {timezone.now():%Y-%m-%d}").plaintext)
                for tenant in queryset]
        return _key_page(
            request, self.admin_site, "New API keys" if len(keys) > 1 else f"New API key for {keys[0][0].name}",
            keys=keys, next_steps=["Give each key to the tenant's developer now: only its hash is kept.",
                                   "Revoke the key it replaces under API keys, once the new one is in use."],
        )

    @admin.action(description="Suspend (sends and webhooks wait, agents stop, API writes refused)",
                  permissions=["change"])
    def suspend(self, request, queryset):
        tenants = list(queryset.filter(status=Tenant.Status.ACTIVE))
        for tenant in tenants:
            suspend_tenant(tenant=tenant)
        self.message_user(request, f"Suspended {len(tenants)} tenant(s)"
                          + _left_alone(len(queryset) - len(tenants), "already suspended") + ".", messages.WARNING)

    @admin.action(description="Reactivate (what waited is sent)", permissions=["change"])
    def reactivate(self, request, queryset):
        tenants = list(queryset.filter(status=Tenant.Status.SUSPENDED))
        for tenant in tenants:
            reactivate_tenant(tenant=tenant)
        self.message_user(request, f"Reactivated {len(tenants)} tenant(s)"
                          + _left_alone(len(queryset) - len(tenants), "already active") + ".")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant__tier"]
    search_fields = ["user__username", "tenant__name", "tenant__slug"]
    list_select_related = ["user", "tenant"]
    autocomplete_fields = ["user", "tenant"]


@admin.register(ApiKey)
class ApiKeyAdmin(ActionsWhereTheyApply, admin.ModelAdmin):
    actions_not_applying = {"revoke": {"revoked_at__isempty": {"0"}}}
    list_display = ["prefix", clipped("name", 30), "tenant", "created_at", "last_used_at", "revoked_at"]
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
        live = [api_key for api_key in queryset if api_key.revoked_at is None]
        for api_key in live:
            revoke_api_key(api_key=api_key)
        skipped = len(queryset) - len(live)
        self.message_user(
            request,
            f"Revoked {len(live)} key(s)" + (f"; {skipped} already revoked" if skipped else "")
            + ". Next: calls with them now answer 401; issue a new key from the tenant's page if one is needed.")
