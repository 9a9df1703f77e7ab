"""The /inbox/ page: a shell the browser fills from the REST API and the /ws/inbox/ socket."""

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse, reverse_lazy
from django.views.decorators.csrf import ensure_csrf_cookie

from tenants.authentication import member_tenant
from tenants.models import Tenant


def _choices(user) -> list[Tenant]:
    if user.is_staff:
        return list(Tenant.objects.select_related("tier").order_by("name"))
    return [m.tenant for m in user.memberships.select_related("tenant__tier").order_by("tenant__name")]


class InboxLoginView(auth_views.LoginView):
    """Tenant members sign in here: the admin's login form admits staff only."""

    template_name = "inbox/login.html"
    redirect_authenticated_user = True
    next_page = reverse_lazy("inbox")


class InboxLogoutView(auth_views.LogoutView):
    next_page = reverse_lazy("inbox-login")


@login_required(login_url=reverse_lazy("inbox-login"))
@ensure_csrf_cookie
def inbox_page(request):
    slug = request.GET.get("tenant", "").strip()
    tenant = member_tenant(request.user, slug or None)
    choices = _choices(request.user)
    context = {"tenant": tenant, "choices": choices, "asked_for": slug}
    if tenant is None:
        status = 404 if slug else (200 if choices else 403)
        return render(request, "inbox/choose.html", context, status=status)
    context["config"] = {
        "tenant": {"slug": tenant.slug, "name": tenant.name, "tier": tenant.tier.display_name,
                   "active": tenant.is_active},
        "staff": request.user.is_staff,
        "user": request.user.get_username(),
        "userId": request.user.pk,
        "socketPath": f"/ws/inbox/?tenant={tenant.slug}",
        "api": "/api/v1/",
        "agentStates": reverse("inbox-agent-states"),
        "markRead": reverse("inbox-mark-read", kwargs={"pk": 0}).replace("/0/", "/{id}/"),
    }
    return render(request, "inbox/inbox.html", context)
