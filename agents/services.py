"""Writes for agents: definitions, routing and switching, hand-off, and answering.

Rules the functions keep (docs/agents.md):
- definitions change through these functions only: each bumps the agent's
  version and, after commit, replaces the tenant's trigger-cache stamp;
- a conversation's ConversationState row is locked (select_for_update) for
  every routing or ownership change, so two jobs of one conversation cannot
  interleave their switches or answer the same message twice;
- the responder (LLM over HTTP) runs between two short transactions, never
  inside one; the second re-checks that nothing changed before it sends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from agents import caches, llm_keys, selectors
from agents.models import Agent, AgentConfig, AgentReply, AgentSwitch, ConversationState, KnowledgeEntry, Trigger
from agents.responders import Answer, knowledge_base, llm
from agents.triggers import TriggerSpecError, compile_spec, validate_time_zone
from messaging import services as messaging
from messaging.models import Conversation, Message
from tenants.models import Tenant
from waplatform.events import publish_event

logger = logging.getLogger(__name__)

AGENT_FIELDS = {
    "name", "kind", "is_default", "active", "greeting", "fallback_text", "confidence_threshold",
    "on_low_confidence", "llm_base_url", "llm_model", "llm_api_key_env", "llm_api_key", "temperature", "system_prompt",
}
TRIGGER_FIELDS = {"agent", "kind", "keywords", "match", "case_sensitive", "pattern", "office_hours",
                  "outside_hours", "priority", "active"}
CONFIG_FIELDS = {"llm_base_url", "llm_model", "llm_api_key", "llm_api_key_env"}


def _invalidate_triggers_on_commit(tenant_id: int) -> None:
    transaction.on_commit(lambda: caches.invalidate_triggers(tenant_id))


# --- definitions -------------------------------------------------------------------


def _save_agent(agent: Agent) -> Agent:
    if agent.confidence_threshold is not None and not 0 <= agent.confidence_threshold <= 1:
        raise ValidationError({"confidence_threshold": "Use a value between 0 and 1."})
    if not 0 <= agent.temperature <= 2:
        raise ValidationError({"temperature": "Use a value between 0 and 2."})
    if agent.is_default:
        if not agent.active:
            raise ValidationError({"is_default": "The default agent must be active."})
        # One default per tenant (a DB constraint too): taking the flag moves it.
        Agent.objects.filter(tenant_id=agent.tenant_id, is_default=True).exclude(pk=agent.pk).update(
            is_default=False, version=F("version") + 1)
    agent.full_clean(validate_constraints=False)
    agent.save()
    _invalidate_triggers_on_commit(agent.tenant_id)
    return agent


@transaction.atomic
def create_agent(*, tenant: Tenant, name: str, kind: str, **fields) -> Agent:
    unknown = set(fields) - AGENT_FIELDS
    if unknown:
        raise TypeError(f"unknown agent fields {sorted(unknown)}")
    if Agent.objects.filter(tenant=tenant, name=name).exists():
        raise ValidationError({"name": f"This tenant already has an agent named {name!r}."})
    agent = Agent(tenant=tenant, name=name, kind=kind, **fields)
    llm_keys.bind_agent(agent, changed=set(fields), url_before=None)
    return _save_agent(agent)


@transaction.atomic
def update_agent(*, agent: Agent, **fields) -> Agent:
    unknown = set(fields) - AGENT_FIELDS
    if unknown:
        raise TypeError(f"unknown agent fields {sorted(unknown)}")
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    if "name" in fields and Agent.objects.filter(tenant_id=agent.tenant_id, name=fields["name"]) \
            .exclude(pk=agent.pk).exists():
        raise ValidationError({"name": f"This tenant already has an agent named {fields['name']!r}."})
    url_before = llm_keys.url_of_agent(agent)
    for name, value in fields.items():
        setattr(agent, name, value)
    llm_keys.bind_agent(agent, changed=set(fields), url_before=url_before)
    agent.version += 1
    return _save_agent(agent)


@transaction.atomic
def delete_agent(*, agent: Agent) -> None:
    tenant_id = agent.tenant_id
    # States pointing at it fall back to no agent (SET_NULL), i.e. the default agent.
    agent.delete()
    _invalidate_triggers_on_commit(tenant_id)


@transaction.atomic
def update_agent_config(*, tenant: Tenant, **fields) -> AgentConfig:
    unknown = set(fields) - CONFIG_FIELDS
    if unknown:
        raise TypeError(f"unknown config fields {sorted(unknown)}")
    config, _ = AgentConfig.objects.select_for_update().get_or_create(tenant=tenant)
    url_before = llm_keys.config_url(config)
    for name, value in fields.items():
        setattr(config, name, value)
    llm_keys.bind_config(config, changed=set(fields), url_before=url_before)
    config.full_clean()
    config.save()
    # Cached responses were produced by the previous model/endpoint.
    Agent.objects.filter(tenant=tenant, kind=Agent.Kind.LLM).update(version=F("version") + 1)
    return config


def _validate_trigger(trigger: Trigger) -> None:
    if trigger.agent is not None and trigger.agent.tenant_id != trigger.tenant_id:
        raise ValidationError({"agent": "No such agent in this tenant."})
    # Every trigger belongs to an agent (it is listed under it); a finish trigger's
    # target is nevertheless always the tenant's default agent.
    if trigger.agent is None:
        raise ValidationError({"agent": f"A {trigger.kind} trigger belongs to an agent."})
    if trigger.kind == Trigger.Kind.HANDOFF and trigger.agent.kind != Agent.Kind.HUMAN:
        raise ValidationError({"kind": "A hand-off trigger belongs to a human agent: it hands conversations to it."})
    try:
        compile_spec({"id": trigger.pk, "kind": trigger.kind, "agent_id": trigger.agent_id,
                      "keywords": trigger.keywords, "match": trigger.match, "case_sensitive": trigger.case_sensitive,
                      "pattern": trigger.pattern, "office_hours": trigger.office_hours,
                      "outside_hours": trigger.outside_hours, "priority": trigger.priority})
        if trigger.kind == Trigger.Kind.OFFICE_HOURS:
            validate_time_zone(trigger.tenant.time_zone)
    except TriggerSpecError as exc:
        raise ValidationError({exc.field: str(exc)}) from None
    trigger.full_clean()


def _bump_agent(agent_id: int | None) -> None:
    if agent_id:
        Agent.objects.filter(pk=agent_id).update(version=F("version") + 1)


@transaction.atomic
def create_trigger(*, tenant: Tenant, kind: str, agent: Agent | None = None, **fields) -> Trigger:
    unknown = set(fields) - TRIGGER_FIELDS
    if unknown:
        raise TypeError(f"unknown trigger fields {sorted(unknown)}")
    trigger = Trigger(tenant=tenant, kind=kind, agent=agent, **fields)
    _validate_trigger(trigger)
    trigger.save()
    _bump_agent(trigger.agent_id)
    _invalidate_triggers_on_commit(tenant.pk)
    return trigger


@transaction.atomic
def update_trigger(*, trigger: Trigger, **fields) -> Trigger:
    unknown = set(fields) - TRIGGER_FIELDS
    if unknown:
        raise TypeError(f"unknown trigger fields {sorted(unknown)}")
    trigger = Trigger.objects.select_for_update().select_related("tenant").get(pk=trigger.pk)
    old_agent = trigger.agent_id
    for name, value in fields.items():
        setattr(trigger, name, value)
    _validate_trigger(trigger)
    trigger.save()
    _bump_agent(old_agent)
    _bump_agent(trigger.agent_id if trigger.agent_id != old_agent else None)
    _invalidate_triggers_on_commit(trigger.tenant_id)
    return trigger


@transaction.atomic
def delete_trigger(*, trigger: Trigger) -> None:
    tenant_id, agent_id = trigger.tenant_id, trigger.agent_id
    trigger.delete()
    _bump_agent(agent_id)
    _invalidate_triggers_on_commit(tenant_id)


def _clean_entry(entry: KnowledgeEntry) -> None:
    if not isinstance(entry.tags, list) or not all(isinstance(t, str) for t in entry.tags):
        raise ValidationError({"tags": "Tags are a list of strings."})
    if not entry.question.strip() or not entry.answer.strip():
        raise ValidationError({"question": "A knowledge entry needs a question and an answer."})
    if len(entry.answer) > settings.MESSAGE_MAX_TEXT_LENGTH:
        raise ValidationError({"answer": f"At most {settings.MESSAGE_MAX_TEXT_LENGTH} characters (WhatsApp's limit)."})
    entry.full_clean()


@transaction.atomic
def create_knowledge_entry(*, agent: Agent, question: str, answer: str, tags: list[str] | None = None) -> KnowledgeEntry:
    entry = KnowledgeEntry(agent=agent, question=question, answer=answer, tags=tags or [])
    _clean_entry(entry)
    entry.save()
    _bump_agent(agent.pk)  # cached answers came from the old knowledge
    return entry


@transaction.atomic
def update_knowledge_entry(*, entry: KnowledgeEntry, **fields) -> KnowledgeEntry:
    entry = KnowledgeEntry.objects.select_for_update().get(pk=entry.pk)
    for name in ("question", "answer", "tags"):
        if name in fields:
            setattr(entry, name, fields[name])
    _clean_entry(entry)
    entry.save()
    _bump_agent(entry.agent_id)
    return entry


@transaction.atomic
def delete_knowledge_entry(*, entry: KnowledgeEntry) -> None:
    agent_id = entry.agent_id
    entry.delete()
    _bump_agent(agent_id)


# --- conversation state and switching ------------------------------------------------


def lock_state(*, conversation_id: int) -> ConversationState:
    """The conversation's state row, created if missing, locked. Must run inside a transaction."""
    conversation = Conversation.objects.only("pk", "tenant_id").get(pk=conversation_id)
    state, created = ConversationState.objects.get_or_create(
        conversation_id=conversation_id, defaults={"tenant_id": conversation.tenant_id})
    if not created:
        state = ConversationState.objects.select_for_update(of=("self",)).get(pk=state.pk)
    return state


def _state_data(state: ConversationState) -> dict:
    return {
        "conversation_id": state.conversation_id,
        "active_agent": state.active_agent_id,
        "owner": state.owner,
        "automation_paused_until": state.automation_paused_until.isoformat() if state.automation_paused_until else None,
    }


def _switch(state: ConversationState, *, to_agent: Agent | None, reason: str, trigger_id: int | None = None,
            message_id: int | None = None, note: str = "") -> AgentSwitch | None:
    """Move the conversation to `to_agent` and log it. Expects the state row locked."""
    if state.active_agent_id == (to_agent.pk if to_agent else None):
        state.active_trigger_id = trigger_id or state.active_trigger_id
        state.save(update_fields=["active_trigger", "updated_at"])
        return None
    switch = AgentSwitch.objects.create(
        tenant_id=state.tenant_id, conversation_id=state.conversation_id, from_agent_id=state.active_agent_id,
        to_agent=to_agent, trigger_id=trigger_id, message_id=message_id, reason=reason, note=note[:255])
    state.active_agent = to_agent
    state.active_trigger_id = trigger_id
    state.last_switch_at = timezone.now()
    fields = ["active_agent", "active_trigger", "last_switch_at", "updated_at"]
    if to_agent is not None and to_agent.kind == Agent.Kind.HUMAN and state.owner != ConversationState.Owner.HUMAN:
        state.owner = ConversationState.Owner.HUMAN
        fields.append("owner")
        publish_event(tenant_id=state.tenant_id, type="conversation.handoff",
                      data={**_state_data(state), "reason": reason, "switch_id": switch.pk})
    state.save(update_fields=fields)
    conversation_id = state.conversation_id
    # The old agent's cached answers belong to the old context.
    transaction.on_commit(lambda: caches.clear_conversation_responses(conversation_id))
    publish_event(tenant_id=state.tenant_id, type="conversation.agent_switched",
                  data={**_state_data(state), "from_agent": switch.from_agent_id, "reason": reason,
                        "trigger_id": trigger_id, "message_id": message_id, "switch_id": switch.pk})
    return switch


@transaction.atomic
def route_inbound(*, conversation_id: int, up_to: int, now: datetime | None = None) -> ConversationState:
    """Run the tenant's triggers over every inbound message not routed yet, in order.

    While a person owns the conversation no trigger moves it: the person hands
    it back with /resume. An office-hours choice lapses when its window ends.
    """
    now = now or timezone.now()
    state = lock_state(conversation_id=conversation_id)
    compiled = selectors.compiled_triggers_for(tenant_id=state.tenant_id)
    agents = {a.pk: a for a in Agent.objects.filter(tenant_id=state.tenant_id, active=True)}
    if state.active_agent_id is None and state.owner == ConversationState.Owner.AUTOMATED \
            and compiled.default_agent_id in agents:
        # The starting point, not a switch: nothing to log, no cache to clear.
        state.active_agent = agents[compiled.default_agent_id]
        state.save(update_fields=["active_agent", "updated_at"])
    messages = Message.objects.filter(conversation_id=conversation_id, direction=Message.Direction.IN,
                                      pk__gt=state.routed_through, pk__lte=up_to).order_by("pk")
    for message in messages:
        if state.owner == ConversationState.Owner.HUMAN:
            break
        trigger = compiled.evaluate(text=message.text, is_first=selectors.is_first_inbound(message=message), now=now)
        if trigger is not None:
            target = agents.get(compiled.target_of(trigger))
            if target is not None:
                _switch(state, to_agent=target, reason=AgentSwitch.Reason.TRIGGER, trigger_id=trigger.id,
                        message_id=message.pk, note=f"{trigger.kind} trigger {trigger.id}")
            continue
        current = compiled.by_id(state.active_trigger_id)
        if current is not None and current.kind == "office_hours" and not current.fires(
                text="", is_first=False, local_now=compiled.local_time(now)):
            _switch(state, to_agent=agents.get(compiled.default_agent_id), reason=AgentSwitch.Reason.OFFICE_HOURS_ENDED,
                    message_id=message.pk)
    if up_to > state.routed_through:
        state.routed_through = up_to
        state.save(update_fields=["routed_through", "updated_at"])
    return state


@transaction.atomic
def set_active_agent(*, conversation: Conversation, agent: Agent | None) -> ConversationState:
    """An operator picks the agent (PATCH /conversations/{id}). A human agent means a hand-off;
    an automated one gives the conversation back to automation."""
    if agent is not None and agent.tenant_id != conversation.tenant_id:
        raise ValidationError({"active_agent": "No such agent in this tenant."})
    state = lock_state(conversation_id=conversation.pk)
    _switch(state, to_agent=agent, reason=AgentSwitch.Reason.API, note="set by an operator")
    if agent is not None and agent.answers_automatically and state.owner == ConversationState.Owner.HUMAN:
        _give_back(state)
    return state


def _give_back(state: ConversationState) -> None:
    state.owner = ConversationState.Owner.AUTOMATED
    state.automation_paused_until = None
    # Automation starts with the next message; what was said to the person is not answered again.
    state.answered_through = state.routed_through = max(
        state.routed_through, selectors.latest_inbound_id(conversation_id=state.conversation_id))
    state.save(update_fields=["owner", "automation_paused_until", "answered_through", "routed_through", "updated_at"])
    publish_event(tenant_id=state.tenant_id, type="conversation.resumed", data=_state_data(state))


@transaction.atomic
def handoff(*, conversation: Conversation, note: str = "") -> ConversationState:
    """A person takes the conversation: automated agents stop answering it until resume."""
    state = lock_state(conversation_id=conversation.pk)
    if state.owner == ConversationState.Owner.HUMAN:
        return state
    human = selectors.human_agent(tenant_id=conversation.tenant_id)
    if human is not None:
        _switch(state, to_agent=human, reason=AgentSwitch.Reason.HANDOFF, note=note)
    if state.owner != ConversationState.Owner.HUMAN:  # no human agent defined: the flag alone
        AgentSwitch.objects.create(tenant_id=state.tenant_id, conversation_id=state.conversation_id,
                                   from_agent_id=state.active_agent_id, to_agent_id=state.active_agent_id,
                                   reason=AgentSwitch.Reason.HANDOFF, note=note[:255])
        state.owner = ConversationState.Owner.HUMAN
        state.save(update_fields=["owner", "updated_at"])
        publish_event(tenant_id=state.tenant_id, type="conversation.handoff",
                      data={**_state_data(state), "reason": AgentSwitch.Reason.HANDOFF})
    return state


@transaction.atomic
def resume(*, conversation: Conversation) -> ConversationState:
    """Back to automation: the default agent if a human agent held it, and no pause."""
    state = lock_state(conversation_id=conversation.pk)
    if state.active_agent is None or not state.active_agent.answers_automatically:
        _switch(state, to_agent=selectors.default_agent(tenant_id=conversation.tenant_id),
                reason=AgentSwitch.Reason.RESUME)
    _give_back(state)
    return state


@transaction.atomic
def pause_for_manual_reply(*, message_id: int, only_from_phone: bool = False) -> bool:
    """A person wrote to the contact (API, inbox or the phone): automation steps back for a while.

    only_from_phone: for `message.sent` events, which every outbound message
    gets; only a message our send flow never handled (no attempts) was typed
    on the phone. The others paused automation when they were queued.
    """
    message = Message.objects.filter(pk=message_id, direction=Message.Direction.OUT).first()
    if message is None or AgentReply.objects.filter(message_id=message_id).exists():
        return False
    if only_from_phone and message.attempts:
        return False
    state = lock_state(conversation_id=message.conversation_id)
    until = timezone.now() + timedelta(seconds=settings.AGENTS_MANUAL_PAUSE_SECONDS)
    if state.automation_paused_until and state.automation_paused_until >= until:
        return False
    state.automation_paused_until = until
    state.save(update_fields=["automation_paused_until", "updated_at"])
    publish_event(tenant_id=state.tenant_id, type="conversation.automation_paused",
                  data={**_state_data(state), "message_id": message_id})
    return True


# --- answering ------------------------------------------------------------------------


@dataclass
class Plan:
    agent: Agent
    answered_through: int
    greeting_only: bool


def _why_not(state: ConversationState, message_id: int, now: datetime) -> str:
    if state.answered_through >= message_id:
        return "already answered"
    if state.active_agent is None or not state.active_agent.active:
        return "no agent"
    if state.owner == ConversationState.Owner.HUMAN or not state.active_agent.answers_automatically:
        return "a person owns it"
    if state.automation_paused_until and state.automation_paused_until > now:
        return "paused after a manual reply"
    return ""


def answer_for(*, agent: Agent, conversation_id: int, answered_through: int, up_to: int) -> Answer | None:
    """Ask the agent's responder (network I/O: call outside transactions). None: nothing to answer."""
    context = selectors.conversation_context(conversation_id=conversation_id, answered_through=answered_through,
                                             up_to=up_to)
    if not context.turn:
        return None
    fingerprint = caches.context_fingerprint(context.turn)
    cached = caches.cached_response(conversation_id=conversation_id, agent_id=agent.pk, version=agent.version,
                                    fingerprint=fingerprint)
    if cached is not None:
        return Answer(text=cached["text"], source=cached["source"], confidence=cached.get("confidence"),
                      handoff=bool(cached.get("handoff")), cached=True)
    fallback = agent.fallback_text or settings.AGENTS_FALLBACK_TEXT
    if agent.kind == Agent.Kind.KNOWLEDGE_BASE:
        threshold = agent.confidence_threshold
        answer = knowledge_base.answer(
            entries=selectors.knowledge_for(agent=agent), context=context, fallback_text=fallback,
            threshold=settings.AGENTS_KB_CONFIDENCE_THRESHOLD if threshold is None else threshold,
            handoff_on_low_confidence=agent.on_low_confidence == Agent.LowConfidence.HANDOFF)
    else:
        answer = llm.answer(endpoint=selectors.llm_endpoint(agent=agent), context=context, fallback_text=fallback)
    if answer.cacheable:
        caches.store_response(conversation_id=conversation_id, agent_id=agent.pk, version=agent.version,
                              fingerprint=fingerprint, response=answer.as_cache())
    return answer


@transaction.atomic
def record_reply(*, conversation_id: int, message_id: int, agent_id: int, answer: Answer,
                 greeting: bool = False) -> Message | None:
    """Send an agent's answer through the normal outbound flow, if the conversation still wants it.

    Re-checks under the state lock what the responder could not hold still
    while it ran: a newer switch, a person taking over, another job's answer.
    """
    now = timezone.now()
    state = lock_state(conversation_id=conversation_id)
    if state.active_agent_id != agent_id:
        return None
    if greeting:
        if agent_id in state.greeted_agents:
            return None
    elif _why_not(state, message_id, now):
        return None
    agent = state.active_agent
    text = answer.text
    if not greeting and agent.greeting and agent_id not in state.greeted_agents:
        text = f"{agent.greeting}\n\n{text}"
    contact = Message.objects.select_related("contact", "tenant__tier").get(pk=message_id)
    accepted = messaging.send_message(tenant=contact.tenant, to=contact.contact.wa_id, type="text", text=text)
    AgentReply.objects.create(
        tenant_id=state.tenant_id, conversation_id=conversation_id, agent_id=agent_id, message=accepted.message,
        in_reply_to_id=message_id, source=AgentReply.Source.GREETING if greeting else answer.source,
        confidence=answer.confidence, cached=answer.cached, error=answer.error,
        prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens)
    if agent_id not in state.greeted_agents:
        state.greeted_agents = [*state.greeted_agents, agent_id]
    if not greeting:
        state.answered_through = message_id
    state.save(update_fields=["greeted_agents", "answered_through", "updated_at"])
    if answer.handoff:
        handoff(conversation=Conversation(pk=conversation_id, tenant_id=state.tenant_id),
                note="low confidence in the knowledge base")
    return accepted.message


def respond(*, conversation_id: int, message_id: int, now: datetime | None = None) -> str:
    """The `ai` job: route the new messages, then answer once for all of them. Returns what happened."""
    if selectors.newer_inbound_exists(conversation_id=conversation_id, message_id=message_id):
        return "superseded by a newer message"  # its own job comes after the debounce window
    conversation = Conversation.objects.select_related("contact").filter(pk=conversation_id).first()
    if conversation is None:
        return "conversation gone"
    if "@g.us" in conversation.contact.wa_id and not settings.AGENTS_ANSWER_GROUPS:
        return "group chat"
    now = now or timezone.now()
    state = route_inbound(conversation_id=conversation_id, up_to=message_id, now=now)
    agent = state.active_agent
    if agent is not None and agent.kind == Agent.Kind.HUMAN and agent.greeting \
            and agent.pk not in state.greeted_agents:
        # A person takes over: say so once, so the contact is not left waiting in silence.
        try:
            record_reply(conversation_id=conversation_id, message_id=message_id, agent_id=agent.pk,
                         answer=Answer(text=agent.greeting, source="greeting"), greeting=True)
        except messaging.SendRefused as exc:
            logger.warning("conversation %s: greeting not sent: %s", conversation_id, exc)
    reason = _why_not(state, message_id, now)
    if reason:
        return reason
    recent = selectors.replies_in_last(conversation_id=conversation_id, since=now - timedelta(minutes=1))
    if recent >= settings.AGENTS_MAX_REPLIES_PER_MINUTE:
        # Two bots (or an echoing contact) answering each other would never stop.
        logger.warning("conversation %s: %d automated replies in a minute, not answering", conversation_id, recent)
        return "reply rate limit"
    answer = answer_for(agent=agent, conversation_id=conversation_id, answered_through=state.answered_through,
                        up_to=message_id)
    if answer is None:
        return "nothing to answer"
    try:
        sent = record_reply(conversation_id=conversation_id, message_id=message_id, agent_id=agent.pk,
                            answer=answer)
    except messaging.SendRefused as exc:
        logger.warning("conversation %s: reply not sent: %s", conversation_id, exc)
        return f"not sent: {exc}"
    return f"answered ({answer.source})" if sent else "state changed while answering"
