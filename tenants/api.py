from django.conf import settings
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import services
from tenants.models import Tenant
from tenants.authentication import ThrottledBasicAuthentication
from tenants.serializers import TenantSerializer
from tenants.ws_tickets import issue_ws_ticket


class TenantView(APIView):
    """The calling tenant: identity, tier and limits."""

    @extend_schema(responses=TenantSerializer)
    def get(self, request):
        return Response(TenantSerializer(request.auth.tenant).data)


class StaffTenantStatusView(APIView):
    """Staff only: suspend or reactivate a tenant (by slug); answers the tenant as it now is."""

    authentication_classes = [SessionAuthentication, ThrottledBasicAuthentication]
    permission_classes = [IsAdminUser]
    action = ""

    @extend_schema(request=None, responses=TenantSerializer)
    def post(self, request, slug: str):
        tenant = get_object_or_404(Tenant.objects.select_related("tier"), slug=slug)
        if self.action == "suspend":
            tenant = services.suspend_tenant(tenant=tenant)
        else:
            tenant = services.reactivate_tenant(tenant=tenant)
        return Response(TenantSerializer(tenant).data)


class WsTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="Open /ws/inbox/?ticket=<ticket> with it; it opens one socket.")
    expires_in = serializers.IntegerField(help_text="Seconds the ticket waits for its connection.")


class WsTicketView(APIView):
    """A single-use ticket for the live-inbox WebSocket, so the API key never sits in a URL (docs/inbox.md)."""

    @extend_schema(request=None, responses={201: WsTicketSerializer})
    def post(self, request):
        ticket = issue_ws_ticket(tenant=request.auth.tenant)
        return Response({"ticket": ticket, "expires_in": settings.WS_TICKET_SECONDS}, status=status.HTTP_201_CREATED)
