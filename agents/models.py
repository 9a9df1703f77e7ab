"""Agents, their triggers and knowledge, and who owns each conversation.

Per-conversation agent state lives here (ConversationState), not on
messaging's models: messaging knows nothing about agents (tenants ← pooling
← messaging ← agents).
"""

from django.db import models
from django.db.models import Q

from messaging.models import Conversation, Message
from tenants.models import Tenant
from waplatform.fields import EncryptedTextField


class Agent(models.Model):
    class Kind(models.TextChoices):
        KNOWLEDGE_BASE = "knowledge_base"
        LLM = "llm"
        HUMAN = "human"

    class LowConfidence(models.TextChoices):
        FALLBACK = "fallback", "send the fallback text"
        HANDOFF = "handoff", "send the fallback text and hand off to a human"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="agents")
    name = models.CharField(max_length=128)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    is_default = models.BooleanField(
        default=False, help_text="Owns conversations no trigger claimed; a finish keyword returns here.")
    active = models.BooleanField(default=True)
    greeting = models.TextField(blank=True, help_text="Sent once when this agent first answers a conversation.")
    fallback_text = models.TextField(blank=True, help_text="Sent when the agent has no confident answer or fails.")
    # knowledge base
    confidence_threshold = models.FloatField(
        null=True, blank=True, help_text="0..1; empty = AGENTS_KB_CONFIDENCE_THRESHOLD.")
    on_low_confidence = models.CharField(max_length=16, choices=LowConfidence.choices,
                                         default=LowConfidence.FALLBACK)
    # llm (OpenAI-compatible /chat/completions); empty fields fall back to the tenant's AgentConfig
    llm_base_url = models.URLField(max_length=500, blank=True)
    llm_model = models.CharField(max_length=128, blank=True)
    llm_api_key_env = models.CharField(max_length=128, blank=True,
                                       help_text="Name of an environment variable holding the API key (staff only).")
    # The agent's own key, encrypted, and the base URL it was stored for: it is sent there only.
    llm_api_key = EncryptedTextField(blank=True)
    llm_api_key_url = models.URLField(max_length=500, blank=True, editable=False)
    temperature = models.FloatField(default=0.3)
    system_prompt = models.TextField(blank=True)
    # Bumped on every change to the agent or its knowledge: response cache keys carry it.
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="one_agent_name_per_tenant"),
            models.UniqueConstraint(fields=["tenant"], condition=Q(is_default=True), name="one_default_agent_per_tenant"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def answers_automatically(self) -> bool:
        return self.kind != self.Kind.HUMAN


class AgentConfig(models.Model):
    """Tenant-wide agent settings: the LLM endpoint and key its llm agents use by default."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="agent_config")
    llm_base_url = models.URLField(max_length=500, blank=True)
    llm_model = models.CharField(max_length=128, blank=True)
    # Stored for tenants that bring their own key; never returned by the API.
    llm_api_key = EncryptedTextField(blank=True)
    llm_api_key_env = models.CharField(max_length=128, blank=True)
    # The base URL the key (or env name) was stored with: it is sent there only (agents/llm_keys.py).
    llm_api_key_url = models.URLField(max_length=500, blank=True, editable=False)
    pause_on_manual_reply = models.BooleanField(
        null=True, blank=True,
        help_text="Whether a reply sent by a person (API, inbox, phone) pauses automation; "
                  "empty = AGENTS_PAUSE_ON_MANUAL_REPLY.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"agent config of {self.tenant}"


class KnowledgeEntry(models.Model):
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="knowledge")
    question = models.TextField()
    answer = models.TextField()
    tags = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        verbose_name_plural = "knowledge entries"

    def __str__(self) -> str:
        return self.question[:80]


class Trigger(models.Model):
    class Kind(models.TextChoices):
        KEYWORD = "keyword"
        REGEX = "regex"
        FIRST_MESSAGE = "first_message"
        OFFICE_HOURS = "office_hours"
        HANDOFF = "handoff", "hand-off keyword"
        FINISH = "finish", "finish keyword"

    class Match(models.TextChoices):
        EQUALS = "equals"
        CONTAINS = "contains"
        STARTS_WITH = "starts_with"
        ENDS_WITH = "ends_with"

    KEYWORD_KINDS = (Kind.KEYWORD, Kind.HANDOFF, Kind.FINISH)

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="agent_triggers")
    # The agent the trigger hands the conversation to. Finish triggers go to the
    # default agent; a hand-off trigger without one goes to the tenant's first human agent.
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="triggers", null=True, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    keywords = models.JSONField(default=list, blank=True)
    match = models.CharField(max_length=16, choices=Match.choices, default=Match.CONTAINS)
    case_sensitive = models.BooleanField(default=False)
    pattern = models.CharField(max_length=500, blank=True, help_text="Python regular expression (kind regex).")
    # [{"days": [0, 1, 2, 3, 4], "start": "09:00", "end": "17:00"}], Monday = 0, tenant's time zone.
    office_hours = models.JSONField(default=list, blank=True)
    outside_hours = models.BooleanField(default=False, help_text="Office hours: fire outside the ranges instead.")
    priority = models.IntegerField(default=0, help_text="Higher wins when several triggers fire.")
    active = models.BooleanField(default=True)
    # Set when the platform switched the trigger off (its pattern ran past the time limit);
    # cleared when the tenant changes the pattern or activates it again.
    disabled_reason = models.CharField(max_length=500, blank=True)
    disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-priority", "pk"]
        indexes = [models.Index(fields=["tenant", "active"])]

    def __str__(self) -> str:
        what = self.pattern or ", ".join(self.keywords) or self.kind
        return f"{self.kind}: {what} → {self.agent or 'default'}"


class ConversationState(models.Model):
    """Who answers a conversation now. One row per conversation, created on first need."""

    class Owner(models.TextChoices):
        AUTOMATED = "automated"
        HUMAN = "human"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    conversation = models.OneToOneField(Conversation, on_delete=models.CASCADE, related_name="agent_state")
    active_agent = models.ForeignKey(Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    # The trigger that chose active_agent; an office-hours choice ends when its window does.
    active_trigger = models.ForeignKey(Trigger, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    owner = models.CharField(max_length=16, choices=Owner.choices, default=Owner.AUTOMATED)
    automation_paused_until = models.DateTimeField(null=True, blank=True)
    # Inbound messages up to this id have been through the triggers; up to answered_through, answered.
    routed_through = models.BigIntegerField(default=0)
    answered_through = models.BigIntegerField(default=0)
    greeted_agents = models.JSONField(default=list, blank=True)
    last_switch_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "owner"])]

    def __str__(self) -> str:
        return f"{self.conversation}: {self.active_agent or 'no agent'} ({self.owner})"


class AgentSwitch(models.Model):
    """The switch log: every change of a conversation's active agent or owner."""

    class Reason(models.TextChoices):
        TRIGGER = "trigger"
        API = "api"
        HANDOFF = "handoff"
        RESUME = "resume"
        OFFICE_HOURS_ENDED = "office_hours_ended"
        LOW_CONFIDENCE = "low_confidence"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="agent_switches")
    from_agent = models.ForeignKey(Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    to_agent = models.ForeignKey(Agent, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    trigger = models.ForeignKey(Trigger, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    reason = models.CharField(max_length=32, choices=Reason.choices)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "agent switches"
        ordering = ["-pk"]
        indexes = [models.Index(fields=["conversation", "-id"])]

    def __str__(self) -> str:
        return f"{self.from_agent or '-'} → {self.to_agent or '-'} ({self.reason})"


class AgentReply(models.Model):
    """A message an agent sent. Outbound messages without a row here are a person's."""

    class Source(models.TextChoices):
        KNOWLEDGE_BASE = "knowledge_base"
        LLM = "llm"
        FALLBACK = "fallback"
        GREETING = "greeting"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="agent_replies")
    agent = models.ForeignKey(Agent, on_delete=models.SET_NULL, null=True, related_name="replies")
    message = models.OneToOneField(Message, on_delete=models.CASCADE, related_name="agent_reply")
    in_reply_to = models.ForeignKey(Message, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    source = models.CharField(max_length=16, choices=Source.choices)
    confidence = models.FloatField(null=True, blank=True)
    cached = models.BooleanField(default=False)
    error = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "agent replies"
        ordering = ["-pk"]
        indexes = [models.Index(fields=["tenant", "created_at"]), models.Index(fields=["conversation", "-id"])]

    def __str__(self) -> str:
        return f"{self.source} reply {self.message_id} by {self.agent}"
