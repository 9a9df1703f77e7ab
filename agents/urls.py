"""Agents' routes under /api/v1/. Included before messaging's: the conversation paths
here are distinct from messaging's, except /conversations/{id}, which dispatches by method."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from agents import api

router = SimpleRouter(trailing_slash=False)
router.register(r"agents/(?P<agent_pk>\d+)/triggers", api.TriggerViewSet, basename="agent-trigger")
router.register(r"agents/(?P<agent_pk>\d+)/knowledge", api.KnowledgeEntryViewSet, basename="agent-knowledge")
router.register("agents", api.AgentViewSet, basename="agent")

urlpatterns = [
    path("agents/config", api.AgentConfigView.as_view(), name="agent-config"),
    path("conversations/<int:pk>", api.conversation_detail, name="conversation-agent-detail"),
    path("conversations/<int:pk>/agent", api.ConversationAgentStateView.as_view(), name="conversation-agent"),
    path("conversations/<int:pk>/handoff", api.HandoffView.as_view(), name="conversation-handoff"),
    path("conversations/<int:pk>/resume", api.ResumeView.as_view(), name="conversation-resume"),
    *router.urls,
]
