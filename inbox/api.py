"""Two small JSON endpoints the inbox page needs and the REST API does not have yet.

Same authentication as the REST API (the member's session + CSRF, staff with
X-Tenant), same tenant scoping: a conversation id of another tenant is a 404.
"""

from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from agents.models import Agent, ConversationState
from messaging.models import Conversation
from messaging.services import mark_conversation_read
from tenants.api_base import TenantScopedGenericAPIView

MAX_IDS = 200


class AgentStatesView(TenantScopedGenericAPIView):
    """GET ?ids=1,2,3: who answers each conversation now, and the tenant's agents by id."""

    queryset = Conversation.objects.all()
    serializer_class = serializers.Serializer

    def get(self, request):
        raw = [part for part in request.query_params.get("ids", "").split(",") if part.strip()]
        if len(raw) > MAX_IDS or not all(part.strip().isdigit() for part in raw):
            raise ValidationError({"ids": f"Up to {MAX_IDS} conversation ids, comma-separated."})
        ids = [int(part) for part in raw]
        states = ConversationState.objects.filter(tenant=self.tenant, conversation_id__in=ids).values(
            "conversation_id", "active_agent_id", "owner", "automation_paused_until")
        agents = Agent.objects.filter(tenant=self.tenant).values("id", "name", "kind", "active")
        return Response({
            "agents": {str(a["id"]): {"name": a["name"], "kind": a["kind"], "active": a["active"]} for a in agents},
            "states": {
                str(s["conversation_id"]): {
                    "active_agent": s["active_agent_id"], "owner": s["owner"],
                    "automation_paused_until": s["automation_paused_until"],
                }
                for s in states
            },
        })


class MarkReadView(TenantScopedGenericAPIView):
    """POST: the person opened the conversation; its unread count drops to zero (and says so live)."""

    queryset = Conversation.objects.all()
    serializer_class = serializers.Serializer

    def post(self, request, pk):
        mark_conversation_read(conversation=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
