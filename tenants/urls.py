from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api import TenantView
from tenants.api_keys import ApiKeyViewSet
from tenants.api_staff import StaffTenantsView

router = SimpleRouter(trailing_slash=False)
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("tenant", TenantView.as_view(), name="api-tenant"),
    path("staff/tenants", StaffTenantsView.as_view(), name="api-staff-tenants"),
    *router.urls,
]
