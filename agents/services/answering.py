"""Answering: ask the active agent's responder and send its answer.

The responder (an LLM over HTTP) runs between two short transactions, never
inside one; the second re-checks under the state lock that nothing changed
before it sends.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rq.job import Job, JobStatus

from agents import caches, selectors
from agents.models import Agent, AgentReply, ConversationState
from agents.responders import Answer, knowledge_base, llm
from agents.services.routing import handoff, lock_state, route_inbound
from messaging import services as messaging
from messaging.models import Conversation, Message
from waplatform.queues import enqueue_many, get_queue

logger = logging.getLogger(__name__)


# Replies this process just wrote: their `message.queued` event, handed over in this process
# right after commit, needs no database look-up to know no person wrote them (the relay,
# elsewhere, finds the AgentReply row instead). Keyed by id, conversation and text, and used
# once: ids repeat where a database is emptied (tests), and a rolled-back reply stays here.
_own_replies: OrderedDict[tuple, None] = OrderedDict()
OWN_REPLIES_KEPT = 4096


def _own_key(message_id, conversation_id, text) -> tuple:
    return (message_id, conversation_id, text)


def _remember_own_reply(message: Message) -> None:
    _own_replies[_own_key(message.pk, message.conversation_id, message.text)] = None
    while len(_own_replies) > OWN_REPLIES_KEPT:
        _own_replies.popitem(last=False)


def is_own_reply(data: dict) -> bool:
    """True for a message (an event's data) an agent of this process wrote; False means: look it up."""
    key = _own_key(data.get("id"), data.get("conversation_id"), data.get("text"))
    return _own_replies.pop(key, False) is None


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
            index=caches.knowledge_index(agent_id=agent.pk, version=agent.version, created_at=agent.created_at,
                                         load_entries=lambda: selectors.knowledge_for(agent=agent)),
            context=context, fallback_text=fallback,
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
    inbound = Message.objects.select_related("contact", "conversation", "tenant__tier").get(pk=message_id)
    if not inbound.tenant.is_active:
        return None  # suspended while the responder ran
    inbound.conversation.contact = inbound.contact
    accepted = messaging.send_message(tenant=inbound.tenant, to=inbound.contact.wa_id, type="text", text=text,
                                      conversation=inbound.conversation)
    _remember_own_reply(accepted.message)
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
    conversation = Conversation.objects.select_related("contact", "tenant").filter(pk=conversation_id).first()
    if conversation is None:
        return "conversation gone"
    if not conversation.tenant.is_active:
        # Not even routed: a suspended tenant's triggers are its code too. Nothing is marked
        # answered, so after reactivation the sweep answers what is still recent.
        return "tenant suspended"
    if "@g.us" in conversation.contact.wa_id and not settings.AGENTS_ANSWER_GROUPS:
        return "group chat"
    now = now or timezone.now()
    state = route_inbound(conversation_id=conversation_id, up_to=message_id, now=now, tenant_id=conversation.tenant_id)
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


def respond_job_id(message_id: int) -> str:
    """One rq job id per inbound message: the subscriber's and the sweep's are the same job,
    so an event handed over twice, or a sweep racing a slow queue, schedules it once."""
    return f"agents-respond-{message_id}"


def _in_flight(job: Job | None, now: datetime) -> bool:
    if job is None:
        return False  # lost: emptied Redis, or expired
    status = job.get_status(refresh=False)
    if status in (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED):
        return True
    if status == JobStatus.STARTED and job.started_at is not None:
        # A job stays "started" when its worker was killed; past what a respond job can take
        # (every LLM attempt timing out) it is presumed dead.
        started = job.started_at if job.started_at.tzinfo else job.started_at.replace(tzinfo=dt_timezone.utc)
        longest = settings.AGENTS_LLM_TIMEOUT_SECONDS * settings.AGENTS_LLM_MAX_ATTEMPTS + 30
        return now - started < timedelta(seconds=longest)
    return False


def sweep_unanswered(*, now: datetime | None = None) -> int:
    """Enqueue `respond` for inbound messages whose reply is overdue; returns how many.

    The agents' side of the outbox guarantee: the reply job is scheduled after
    commit, so a Redis emptied or a worker killed between the message and its
    answer loses the job, never the message. This finds the message again
    (agents.selectors.unanswered_inbound) and schedules the job, unless it is
    still on its way. respond itself re-checks everything, so a duplicate does
    nothing.
    """
    now = now or timezone.now()
    due = selectors.unanswered_inbound(now=now, limit=settings.AGENTS_SWEEP_BATCH)
    if not due:
        return 0
    connection = get_queue("ai").connection
    jobs = Job.fetch_many([respond_job_id(message_id) for _, message_id in due], connection=connection)
    lost = [(conversation_id, message_id) for (conversation_id, message_id), job in zip(due, jobs)
            if not _in_flight(job, now)]
    enqueue_many("agents.jobs.respond", lost, queue="ai",
                  job_ids=[respond_job_id(message_id) for _, message_id in lost])
    if lost:
        logger.info("agents sweep: %d unanswered inbound messages re-enqueued", len(lost))
    return len(lost)
