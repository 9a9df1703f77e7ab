"""API shapes for agents. Validation of meaning (regexes, office hours) is in services."""

from __future__ import annotations

from rest_framework import serializers

from agents.models import Agent, AgentConfig, AgentSwitch, ConversationState, KnowledgeEntry, Trigger


class AgentSerializer(serializers.ModelSerializer):
    # Write-only: a stored key is never returned, only whether one is set.
    llm_api_key = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500)
    llm_api_key_set = serializers.SerializerMethodField()

    class Meta:
        model = Agent
        fields = ["id", "name", "kind", "is_default", "active", "greeting", "fallback_text", "confidence_threshold",
                  "on_low_confidence", "llm_base_url", "llm_model", "llm_api_key", "llm_api_key_set",
                  "llm_api_key_env", "temperature", "system_prompt", "version", "created_at", "updated_at"]
        read_only_fields = ["id", "version", "created_at", "updated_at"]
        # Uniqueness is checked by the service (it knows the tenant).
        validators = []

    def get_llm_api_key_set(self, agent: Agent) -> bool:
        return bool(agent.llm_api_key)


class AgentConfigSerializer(serializers.ModelSerializer):
    llm_api_key = serializers.CharField(write_only=True, required=False, allow_blank=True, max_length=500)
    llm_api_key_set = serializers.SerializerMethodField()
    # null until the tenant first saves its configuration
    updated_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = AgentConfig
        fields = ["llm_base_url", "llm_model", "llm_api_key", "llm_api_key_env", "llm_api_key_set",
                  "pause_on_manual_reply", "updated_at"]
        read_only_fields = ["updated_at"]

    def get_llm_api_key_set(self, config: AgentConfig) -> bool:
        return bool(config.llm_api_key)


class TriggerSerializer(serializers.ModelSerializer):
    agent = serializers.PrimaryKeyRelatedField(read_only=True)

    class Meta:
        model = Trigger
        fields = ["id", "agent", "kind", "keywords", "match", "case_sensitive", "pattern", "office_hours",
                  "outside_hours", "priority", "active", "disabled_reason", "disabled_at", "created_at", "updated_at"]
        # disabled_*: why the platform switched the trigger off; PATCH active=true clears them.
        read_only_fields = ["id", "agent", "disabled_reason", "disabled_at", "created_at", "updated_at"]

    def validate_keywords(self, value):
        if not isinstance(value, list) or not all(isinstance(k, str) for k in value):
            raise serializers.ValidationError("keywords is a list of strings.")
        return value


class KnowledgeEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = KnowledgeEntry
        fields = ["id", "agent", "question", "answer", "tags", "created_at", "updated_at"]
        read_only_fields = ["id", "agent", "created_at", "updated_at"]


class AgentSwitchSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentSwitch
        fields = ["id", "from_agent", "to_agent", "trigger", "message", "reason", "note", "created_at"]


class ConversationAgentSerializer(serializers.ModelSerializer):
    """A conversation's agent state, as PATCH/handoff/resume answer it."""

    conversation_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = ConversationState
        fields = ["conversation_id", "active_agent", "owner", "automation_paused_until", "last_switch_at"]


class SetActiveAgentSerializer(serializers.Serializer):
    active_agent = serializers.IntegerField(allow_null=True)


class HandoffSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, max_length=255, default="")
