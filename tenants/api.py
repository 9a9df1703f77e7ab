from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.serializers import TenantSerializer
from tenants.ws_tickets import issue_ws_ticket


class TenantView(APIView):
    """The calling tenant: identity, tier and limits."""

    @extend_schema(responses=TenantSerializer)
    def get(self, request):
        return Response(TenantSerializer(request.auth.tenant).data)


class WsTicketSerializer(serializers.Serializer):
    ticket = serializers.CharField(help_text="Open /ws/inbox/?ticket=<ticket> with it; it opens one socket.")
    expires_in = serializers.IntegerField(help_text="Seconds the ticket waits for its connection.")


class WsTicketView(APIView):
    """A single-use ticket for the live-inbox WebSocket, so the API key never sits in a URL (docs/inbox.md)."""

    @extend_schema(request=None, responses={201: WsTicketSerializer})
    def post(self, request):
        ticket = issue_ws_ticket(tenant=request.auth.tenant)
        return Response({"ticket": ticket, "expires_in": settings.WS_TICKET_SECONDS}, status=status.HTTP_201_CREATED)
