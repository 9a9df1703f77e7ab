from django.urls import path

from tenants.api import TenantView

urlpatterns = [
    path("tenant", TenantView.as_view(), name="api-tenant"),
]
