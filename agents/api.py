"""The tenant REST API for agents, and the agent side of /conversations. Thin: parse, call a service, shape."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from agents import llm_keys, selectors, services
from agents.models import Agent, AgentConfig, ConversationState, KnowledgeEntry, Trigger
from agents.serializers import (
    AgentConfigSerializer,
    AgentSerializer,
    AgentSwitchSerializer,
    ConversationAgentSerializer,
    HandoffSerializer,
    KnowledgeEntrySerializer,
    SetActiveAgentSerializer,
    TriggerSerializer,
)
from messaging.api import ConversationViewSet
from messaging.models import Conversation
from tenants.api_base import TenantScopedGenericAPIView, TenantScopedViewSet


def refused(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages})


class _CrudViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Reads from the mixins, writes through one service each."""

    lookup_value_regex = r"\d+"

    def create(self, request, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            obj = self.perform_service_create(serializer.validated_data)
        except DjangoValidationError as exc:
            raise refused(exc) from None
        return Response(self.get_serializer(obj).data, status=status.HTTP_201_CREATED)

    def update(self, request, partial=False, **kwargs):
        obj = self.get_object()
        serializer = self.get_serializer(obj, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        try:
            obj = self.perform_service_update(obj, serializer.validated_data)
        except DjangoValidationError as exc:
            raise refused(exc) from None
        return Response(self.get_serializer(obj).data)

    def partial_update(self, request, **kwargs):
        return self.update(request, partial=True, **kwargs)

    def destroy(self, request, **kwargs):
        self.perform_service_delete(self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class AgentViewSet(_CrudViewSet):
    queryset = Agent.objects.all()
    serializer_class = AgentSerializer

    def perform_service_create(self, data):
        llm_keys.refuse_env_name_unless_staff(data, is_staff=self.request.user.is_staff)
        return services.create_agent(tenant=self.tenant, **data)

    def perform_service_update(self, agent, data):
        llm_keys.refuse_env_name_unless_staff(data, is_staff=self.request.user.is_staff)
        return services.update_agent(agent=agent, **data)

    def perform_service_delete(self, agent):
        services.delete_agent(agent=agent)


class _PerAgentMixin:
    """Nested under /agents/{agent_pk}/: the agent must be the caller tenant's."""

    def parent_agent(self) -> Agent:
        return get_object_or_404(Agent, tenant=self.tenant, pk=self.kwargs["agent_pk"])

    def safely_get_queryset(self, queryset):
        return queryset.filter(agent=self.parent_agent())


class TriggerViewSet(_PerAgentMixin, _CrudViewSet):
    queryset = Trigger.objects.all()
    serializer_class = TriggerSerializer

    def perform_service_create(self, data):
        return services.create_trigger(tenant=self.tenant, agent=self.parent_agent(), **data)

    def perform_service_update(self, trigger, data):
        return services.update_trigger(trigger=trigger, **data)

    def perform_service_delete(self, trigger):
        services.delete_trigger(trigger=trigger)


class KnowledgeEntryViewSet(_PerAgentMixin, _CrudViewSet):
    queryset = KnowledgeEntry.objects.all()
    serializer_class = KnowledgeEntrySerializer
    tenant_field = "agent__tenant"

    def perform_service_create(self, data):
        return services.create_knowledge_entry(agent=self.parent_agent(), **data)

    def perform_service_update(self, entry, data):
        return services.update_knowledge_entry(entry=entry, **data)

    def perform_service_delete(self, entry):
        services.delete_knowledge_entry(entry=entry)


class AgentConfigView(TenantScopedGenericAPIView):
    """GET/PATCH /api/v1/agents/config: the tenant's LLM endpoint and key (the key is write-only)."""

    queryset = AgentConfig.objects.all()
    serializer_class = AgentConfigSerializer

    def get(self, request):
        config = self.get_queryset().first() or AgentConfig(tenant=self.tenant)
        return Response(AgentConfigSerializer(config).data)

    def patch(self, request):
        serializer = AgentConfigSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            llm_keys.refuse_env_name_unless_staff(serializer.validated_data, is_staff=request.user.is_staff)
            config = services.update_agent_config(tenant=self.tenant, **serializer.validated_data)
        except DjangoValidationError as exc:
            raise refused(exc) from None
        return Response(AgentConfigSerializer(config).data)


class _ConversationAgentBase(TenantScopedGenericAPIView):
    queryset = Conversation.objects.all()
    serializer_class = ConversationAgentSerializer

    def answer(self, state: ConversationState, code=status.HTTP_200_OK) -> Response:
        return Response(ConversationAgentSerializer(state).data, status=code)


class ConversationAgentView(_ConversationAgentBase):
    """PATCH /api/v1/conversations/{id} {"active_agent": id|null}; GET .../agent adds the switch log."""

    @extend_schema(request=SetActiveAgentSerializer, responses=ConversationAgentSerializer)
    def patch(self, request, pk):
        conversation = self.get_object()
        serializer = SetActiveAgentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agent_id = serializer.validated_data["active_agent"]
        agent = None
        if agent_id is not None:
            agent = Agent.objects.filter(tenant=self.tenant, pk=agent_id).first()
            if agent is None:
                raise ValidationError({"active_agent": f"No agent {agent_id} in this tenant."})
            if not agent.active:
                raise ValidationError({"active_agent": f"Agent {agent_id} is switched off."})
        return self.answer(services.set_active_agent(conversation=conversation, agent=agent))


class ConversationAgentStateView(_ConversationAgentBase):
    def get(self, request, pk):
        conversation = self.get_object()
        state = selectors.state_of(conversation=conversation) or ConversationState(conversation=conversation)
        switches = selectors.switch_log(conversation=conversation)[:100]
        return Response({**ConversationAgentSerializer(state).data,
                         "switches": AgentSwitchSerializer(switches, many=True).data})


class HandoffView(_ConversationAgentBase):
    @extend_schema(request=HandoffSerializer, responses=ConversationAgentSerializer)
    def post(self, request, pk):
        conversation = self.get_object()
        serializer = HandoffSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return self.answer(services.handoff(conversation=conversation, note=serializer.validated_data["note"]))


class ResumeView(_ConversationAgentBase):
    @extend_schema(request=None, responses=ConversationAgentSerializer)
    def post(self, request, pk):
        return self.answer(services.resume(conversation=self.get_object()))


_messaging_conversation = ConversationViewSet.as_view({"get": "retrieve"})
_agents_conversation = ConversationAgentView.as_view()


@csrf_exempt
def conversation_detail(request, pk):
    """/api/v1/conversations/{id} belongs to messaging except for PATCH, which sets the agent.

    Django routes by path, not method, so this one path dispatches by method:
    GET keeps answering from messaging's own view, unchanged.
    """
    if request.method == "PATCH":
        return _agents_conversation(request, pk=pk)
    return _messaging_conversation(request, pk=str(pk))
