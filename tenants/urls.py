from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api import StaffTenantStatusView, TenantView, WsTicketView
from tenants import openapi  # noqa: F401  (the API key scheme, for drf-spectacular: loaded with the API, not by workers)
from tenants.api_keys import ApiKeyViewSet
from tenants.api_staff import StaffTenantsView

router = SimpleRouter(trailing_slash=False)
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("tenant", TenantView.as_view(), name="api-tenant"),
    path("staff/tenants/<slug:slug>/suspend", StaffTenantStatusView.as_view(action="suspend"),
         name="api-staff-tenant-suspend"),
    path("staff/tenants/<slug:slug>/reactivate", StaffTenantStatusView.as_view(action="reactivate"),
         name="api-staff-tenant-reactivate"),
    path("ws-ticket", WsTicketView.as_view(), name="api-ws-ticket"),
    path("staff/tenants", StaffTenantsView.as_view(), name="api-staff-tenants"),
    *router.urls,
]
