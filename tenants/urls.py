from django.urls import path
from rest_framework.routers import SimpleRouter

from tenants.api import TenantView, WsTicketView
from tenants.api_keys import ApiKeyViewSet

router = SimpleRouter(trailing_slash=False)
router.register("api-keys", ApiKeyViewSet, basename="api-key")

urlpatterns = [
    path("tenant", TenantView.as_view(), name="api-tenant"),
    path("ws-ticket", WsTicketView.as_view(), name="api-ws-ticket"),
    *router.urls,
]
