"""Routing and ownership: which agent holds a conversation, and whether a person does.

A conversation's ConversationState row is locked (select_for_update) for every
routing or ownership change, so two jobs of one conversation cannot interleave
their switches or answer the same message twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agents import caches, selectors
from agents.models import Agent, AgentReply, AgentSwitch, ConversationState
from agents.services.definitions import disable_trigger
from agents.triggers import CompiledTrigger, CompiledTriggers
from messaging.models import Conversation, Message
from waplatform.events import publish_event

logger = logging.getLogger(__name__)


def lock_state(*, conversation_id: int) -> ConversationState:
    """The conversation's state row, created if missing, locked, its agent loaded. Must run inside a transaction."""
    locked = ConversationState.objects.select_for_update(of=("self",)).select_related("active_agent")
    state = locked.filter(conversation_id=conversation_id).first()
    if state is not None:
        return state  # every conversation but a new one's: one statement
    conversation = Conversation.objects.only("pk", "tenant_id").get(pk=conversation_id)
    state, created = ConversationState.objects.get_or_create(
        conversation_id=conversation_id, defaults={"tenant_id": conversation.tenant_id})
    if not created:  # another job made it meanwhile
        state = locked.get(pk=state.pk)
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


def route_inbound(*, conversation_id: int, up_to: int, now: datetime | None = None,
                  tenant_id: int | None = None) -> ConversationState:
    """Run the tenant's triggers over every inbound message not routed yet, in order.

    The triggers are the tenant's code (its regular expressions): they run
    first, outside any transaction, each under AGENTS_PATTERN_TIMEOUT_MS; a
    pattern that runs past it is disabled and the tenant told
    (`trigger.disabled`), and the other triggers decide. Only then is the state
    row locked, for a short write that applies the decisions to the messages no
    other job routed meanwhile. Holding the lock while a tenant's pattern runs
    would stop every write of every tenant on SQLite (issue 13).

    While a person owns the conversation no trigger moves it: the person hands
    it back with /resume. An office-hours choice lapses when its window ends.
    tenant_id: the conversation's, when the caller holds it (saves a read).
    """
    now = now or timezone.now()
    if tenant_id is None:
        tenant_id = Conversation.objects.values_list("tenant_id", flat=True).get(pk=conversation_id)
    compiled = selectors.compiled_triggers_for(tenant_id=tenant_id)
    routed_through = ConversationState.objects.filter(conversation_id=conversation_id) \
        .values_list("routed_through", flat=True).first() or 0
    decisions: dict[int, CompiledTrigger | None] = {}
    timed_out: set[int] = set()
    timed_out_on: dict[int, int] = {}  # trigger → the message it ran past the limit on
    timeout = settings.AGENTS_PATTERN_TIMEOUT_MS / 1000
    messages = Message.objects.filter(conversation_id=conversation_id, direction=Message.Direction.IN,
                                      pk__gt=routed_through, pk__lte=up_to).order_by("pk")
    for message in messages:
        decisions[message.pk] = compiled.evaluate(
            text=message.text, is_first=selectors.is_first_inbound(message=message), now=now, timeout=timeout,
            timed_out=timed_out)
        for trigger_id in timed_out - timed_out_on.keys():
            timed_out_on[trigger_id] = message.pk
    for trigger_id, message_id in sorted(timed_out_on.items()):
        logger.warning("trigger %s of tenant %s ran past %s ms on message %s: disabled",
                       trigger_id, tenant_id, settings.AGENTS_PATTERN_TIMEOUT_MS, message_id)
        disable_trigger(trigger_id=trigger_id, conversation_id=conversation_id, message_id=message_id,
                        reason=f"Its pattern ran longer than {settings.AGENTS_PATTERN_TIMEOUT_MS} ms on an inbound "
                               "message (catastrophic backtracking), so the platform switched it off; the other "
                               "triggers went on. Simplify the pattern, then activate the trigger again.")
    return _apply_routing(conversation_id=conversation_id, up_to=up_to, decisions=decisions, compiled=compiled,
                          now=now)


@transaction.atomic
def _apply_routing(*, conversation_id: int, up_to: int, decisions: dict[int, CompiledTrigger | None],
                   compiled: CompiledTriggers, now: datetime) -> ConversationState:
    """Apply decisions made outside the lock to the messages still unrouted under it.

    No tenant pattern runs here: only keywords already decided and the
    office-hours clock. A message routed by another job meanwhile is skipped;
    one committed after the decisions were made (below up_to) routes as if no
    trigger fired, as it would have had it committed after the read.
    """
    state = lock_state(conversation_id=conversation_id)
    agents = {a.pk: a for a in Agent.objects.filter(tenant_id=state.tenant_id, active=True)}
    if state.active_agent_id is None and state.owner == ConversationState.Owner.AUTOMATED \
            and compiled.default_agent_id in agents:
        # The starting point, not a switch: nothing to log, no cache to clear.
        state.active_agent = agents[compiled.default_agent_id]
        state.save(update_fields=["active_agent", "updated_at"])
    for message_id in sorted(decisions):
        if message_id <= state.routed_through:
            continue
        if state.owner == ConversationState.Owner.HUMAN:
            break
        trigger = decisions[message_id]
        if trigger is not None:
            target = agents.get(compiled.target_of(trigger))
            if target is not None:
                _switch(state, to_agent=target, reason=AgentSwitch.Reason.TRIGGER, trigger_id=trigger.id,
                        message_id=message_id, note=f"{trigger.kind} trigger {trigger.id}")
            continue
        current = compiled.by_id(state.active_trigger_id)
        if current is not None and current.kind == "office_hours" and not current.fires(
                text="", is_first=False, local_now=compiled.local_time(now)):
            _switch(state, to_agent=agents.get(compiled.default_agent_id), reason=AgentSwitch.Reason.OFFICE_HOURS_ENDED,
                    message_id=message_id)
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


MANUAL_PAUSE_RENEWAL_SECONDS = 60


@transaction.atomic
def pause_for_manual_reply(*, message_id: int, conversation_id: int, only_from_phone: bool = False) -> bool:
    """A person wrote to the contact (API, inbox or the phone): automation steps back for a while.

    only_from_phone: for `message.sent` events, which every outbound message
    gets; only a message our send flow never handled (no attempts) was typed
    on the phone. The others paused automation when they were queued.
    conversation_id: the message's (its event's data): a conversation paused recently enough
    is left alone before the message is even read.
    """
    until = timezone.now() + timedelta(seconds=settings.AGENTS_MANUAL_PAUSE_SECONDS)
    # A person writing message after message renews the pause at most once a minute: looked up
    # without the lock first, the others skip the locked write and the event (before, about a
    # third of every POST /messages went here, queued on one row lock per conversation).
    renewed_enough = until - timedelta(seconds=min(MANUAL_PAUSE_RENEWAL_SECONDS,
                                                   settings.AGENTS_MANUAL_PAUSE_SECONDS / 10))
    if ConversationState.objects.filter(conversation_id=conversation_id,
                                        automation_paused_until__gte=renewed_enough).exists():
        return False
    message = Message.objects.filter(pk=message_id, direction=Message.Direction.OUT).first()
    if message is None or AgentReply.objects.filter(message_id=message_id).exists():
        return False
    if only_from_phone and message.attempts:
        return False
    if not selectors.pauses_on_manual_reply(tenant_id=message.tenant_id):
        return False  # the tenant's choice: its people's messages leave the bot answering
    state = lock_state(conversation_id=message.conversation_id)
    if state.automation_paused_until and state.automation_paused_until >= renewed_enough:
        return False
    state.automation_paused_until = until
    state.save(update_fields=["automation_paused_until", "updated_at"])
    publish_event(tenant_id=state.tenant_id, type="conversation.automation_paused",
                  data={**_state_data(state), "message_id": message_id})
    return True
