"""Reads for agents: trigger specs, a conversation's context, LLM endpoints, AI cost."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet, Sum

from agents import caches, llm_keys
from agents.models import Agent, AgentConfig, AgentReply, AgentSwitch, ConversationState, KnowledgeEntry, Trigger
from agents.responders import Context
from agents.responders.knowledge_base import Entry
from agents.responders.llm import Endpoint
from agents.triggers import CompiledTriggers
from messaging.models import Conversation, Message
from tenants.models import Tenant


def pauses_on_manual_reply(*, tenant_id: int) -> bool:
    """The tenant's choice (AgentConfig.pause_on_manual_reply), else AGENTS_PAUSE_ON_MANUAL_REPLY."""
    choice = AgentConfig.objects.filter(tenant_id=tenant_id).values_list("pause_on_manual_reply", flat=True).first()
    return settings.AGENTS_PAUSE_ON_MANUAL_REPLY if choice is None else choice


def default_agent(*, tenant_id: int) -> Agent | None:
    return Agent.objects.filter(tenant_id=tenant_id, is_default=True, active=True).first()


def human_agent(*, tenant_id: int) -> Agent | None:
    return Agent.objects.filter(tenant_id=tenant_id, kind=Agent.Kind.HUMAN, active=True).order_by("pk").first()


def trigger_specs(*, tenant_id: int) -> dict:
    """What the trigger cache stores: JSON-safe specs of the tenant's live triggers."""
    tenant = Tenant.objects.get(pk=tenant_id)
    live_agents = set(Agent.objects.filter(tenant_id=tenant_id, active=True).values_list("pk", flat=True))
    specs = []
    for t in Trigger.objects.filter(tenant_id=tenant_id, active=True).order_by("pk"):
        if t.agent_id is not None and t.agent_id not in live_agents:
            continue  # a trigger of a switched-off agent must not hand it conversations
        specs.append({
            "id": t.pk, "kind": t.kind, "agent_id": t.agent_id, "keywords": t.keywords, "match": t.match,
            "case_sensitive": t.case_sensitive, "pattern": t.pattern, "office_hours": t.office_hours,
            "outside_hours": t.outside_hours, "priority": t.priority,
        })
    default = default_agent(tenant_id=tenant_id)
    human = human_agent(tenant_id=tenant_id)
    return {"triggers": specs, "default_agent_id": default.pk if default else None,
            "human_agent_id": human.pk if human else None, "time_zone": tenant.time_zone}


def compiled_triggers_for(*, tenant_id: int) -> CompiledTriggers:
    return caches.compiled_triggers(tenant_id, lambda: trigger_specs(tenant_id=tenant_id))


def state_of(*, conversation: Conversation) -> ConversationState | None:
    return ConversationState.objects.select_related("active_agent").filter(conversation=conversation).first()


def switch_log(*, conversation: Conversation) -> QuerySet[AgentSwitch]:
    return AgentSwitch.objects.filter(conversation=conversation).select_related("from_agent", "to_agent", "trigger")


def is_first_inbound(*, message: Message) -> bool:
    return not Message.objects.filter(conversation_id=message.conversation_id, direction=Message.Direction.IN,
                                      pk__lt=message.pk).exists()


def newer_inbound_exists(*, conversation_id: int, message_id: int) -> bool:
    return Message.objects.filter(conversation_id=conversation_id, direction=Message.Direction.IN,
                                  pk__gt=message_id).exists()


def last_outbound_id(*, conversation_id: int) -> int:
    return Message.objects.filter(conversation_id=conversation_id, direction=Message.Direction.OUT) \
        .aggregate(m=Max("pk"))["m"] or 0


def latest_inbound_id(*, conversation_id: int) -> int:
    return Message.objects.filter(conversation_id=conversation_id, direction=Message.Direction.IN) \
        .aggregate(m=Max("pk"))["m"] or 0


def unanswered_inbound(*, now: datetime, limit: int) -> list[tuple[int, int]]:
    """(conversation, message) pairs the respond job should have answered and did not.

    The latest inbound message of a conversation, due (older than the debounce
    window plus AGENTS_SWEEP_GRACE_SECONDS) but younger than
    AGENTS_RESUME_MAX_AGE_SECONDS, of an active tenant, that nobody wrote to
    since and that respond would answer: not answered through it, owned by
    automation, not paused, and an automated agent to answer (the state's, or
    the tenant's default for a conversation routing never saw). What respond
    turns down for reasons that last (a person owns it, a group chat) is left
    out here, so the sweep does not ask again every round.
    """
    due_before = now - timedelta(seconds=settings.AGENTS_DEBOUNCE_SECONDS + settings.AGENTS_SWEEP_GRACE_SECONDS)
    newer_in = Message.objects.filter(conversation_id=OuterRef("conversation_id"), direction=Message.Direction.IN,
                                      pk__gt=OuterRef("pk"))
    later_out = Message.objects.filter(conversation_id=OuterRef("conversation_id"), direction=Message.Direction.OUT,
                                       pk__gt=OuterRef("pk"))
    has_default = Exists(Agent.objects.filter(tenant_id=OuterRef("tenant_id"), is_default=True, active=True)
                         .exclude(kind=Agent.Kind.HUMAN))
    state = "conversation__agent_state__"
    unrouted = Q(**{f"{state}isnull": True}) & has_default
    automated = (
        Q(**{f"{state}owner": ConversationState.Owner.AUTOMATED, f"{state}answered_through__lt": F("pk")})
        & (Q(**{f"{state}automation_paused_until__isnull": True}) | Q(**{f"{state}automation_paused_until__lte": now}))
        & ((Q(**{f"{state}active_agent__isnull": True}) & has_default)
           | (Q(**{f"{state}active_agent__active": True}) & ~Q(**{f"{state}active_agent__kind": Agent.Kind.HUMAN})))
    )
    due = Message.objects.filter(
        direction=Message.Direction.IN, tenant__status=Tenant.Status.ACTIVE,
        accepted_at__gte=now - timedelta(seconds=settings.AGENTS_RESUME_MAX_AGE_SECONDS), accepted_at__lt=due_before,
    ).filter(unrouted | automated).exclude(Exists(newer_in)).exclude(Exists(later_out))
    if not settings.AGENTS_ANSWER_GROUPS:
        due = due.exclude(contact__wa_id__contains="@g.us")
    return list(due.order_by("pk").values_list("conversation_id", "pk")[:limit])


def conversation_context(*, conversation_id: int, answered_through: int, up_to: int) -> Context:
    """The whole recent conversation (AGENTS_CONTEXT_MESSAGES), switch notes in place.

    The turn is what the contact wrote since anyone last wrote to them: a new
    agent answers the open question, not something another agent answered.
    """
    since = max(answered_through, last_outbound_id(conversation_id=conversation_id))
    recent = list(
        Message.objects.filter(conversation_id=conversation_id, pk__lte=max(up_to, since))
        .order_by("-pk").values("pk", "direction", "text", "accepted_at")[: settings.AGENTS_CONTEXT_MESSAGES]
    )[::-1]
    turn = [m["text"] for m in recent if m["direction"] == "in" and since < m["pk"] <= up_to and m["text"]]
    timeline: list[tuple[datetime, int, str, str]] = [
        (m["accepted_at"], 0, "user" if m["direction"] == "in" else "assistant", m["text"]) for m in recent
    ]
    if recent:
        first_at = recent[0]["accepted_at"]
        for switch in AgentSwitch.objects.filter(conversation_id=conversation_id, created_at__gte=first_at) \
                .select_related("from_agent", "to_agent").order_by("pk"):
            note = (f"[The conversation was handed from {switch.from_agent.name if switch.from_agent else 'nobody'} "
                    f"to {switch.to_agent.name if switch.to_agent else 'nobody'} ({switch.get_reason_display()}"
                    f"{': ' + switch.note if switch.note else ''}). Earlier messages stay part of the conversation.]")
            timeline.append((switch.created_at, 1, "note", note))
    timeline.sort(key=lambda item: (item[0], item[1]))
    return Context(conversation_id=conversation_id, turn=turn, history=[(role, text) for _, _, role, text in timeline])


def knowledge_for(*, agent: Agent) -> list[Entry]:
    return [Entry(id=e.pk, question=e.question, answer=e.answer, tags=[str(t) for t in (e.tags or [])])
            for e in KnowledgeEntry.objects.filter(agent=agent).order_by("pk")]


def llm_endpoint(*, agent: Agent) -> Endpoint:
    """Agent fields first, then the tenant's AgentConfig, then the environment (AGENTS_LLM_*);
    the key is the one stored for that URL (agents/llm_keys.py)."""
    config = llm_keys.config_of(agent.tenant_id)
    resolved = llm_keys.resolve(agent=agent, config=config)
    return Endpoint(
        base_url=resolved.base_url,
        model=agent.llm_model or config.llm_model or settings.AGENTS_LLM_MODEL,
        api_key=resolved.api_key, temperature=agent.temperature, system_prompt=agent.system_prompt,
        trusted=resolved.trusted, key_note=resolved.note,
    )


def replies_in_last(*, conversation_id: int, since: datetime) -> int:
    return AgentReply.objects.filter(conversation_id=conversation_id, created_at__gte=since).count()


def ai_costs_by_tenant(*, since: datetime, tenant_ids: list[int] | None = None) -> dict[int, Decimal]:
    """USD of LLM tokens each tenant's agents used since `since` (AGENTS_LLM_PRICE_PER_1K_*), per tenant
    id (every tenant when None), in one query: a cost contributor (pooling.costs)."""
    replies = AgentReply.objects.filter(created_at__gte=since)
    if tenant_ids is not None:
        replies = replies.filter(tenant_id__in=tenant_ids)
    prompt_price = Decimal(str(settings.AGENTS_LLM_PRICE_PER_1K_PROMPT_TOKENS))
    completion_price = Decimal(str(settings.AGENTS_LLM_PRICE_PER_1K_COMPLETION_TOKENS))
    return {
        tenant_id: (Decimal(prompt or 0) * prompt_price + Decimal(completion or 0) * completion_price) / Decimal(1000)
        for tenant_id, prompt, completion in replies.values("tenant_id")
        .annotate(prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"))
        .values_list("tenant_id", "prompt", "completion")
        .order_by()
    }


def ai_cost_for_tenant(*, tenant: Tenant, since: datetime) -> Decimal:
    return ai_costs_by_tenant(since=since, tenant_ids=[tenant.pk]).get(tenant.pk, Decimal(0))
