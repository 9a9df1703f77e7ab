"""What the bridges report: inbound messages, acks and session statuses from verified webhooks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from messaging.models import Conversation, Message
from messaging.services.assignment import auto_assign
from messaging.services.conversations import get_or_create_contact, get_or_create_conversation
from messaging.services.lifecycle import reopen_on_inbound
from messaging.services.media import record_inbound_media
from messaging.services.payloads import conversation_event_data, message_representation, publish_loaded_message
from messaging.services.statuses import apply_pending_statuses, apply_status
from pooling import services as pooling
from pooling.bridges.base import BridgeEvent
from tenants.models import Tenant
from waplatform import counters
from waplatform.events import fan_out_by_relay, publish_events

logger = logging.getLogger(__name__)


@dataclass
class IngestResult:
    received: list[int] = field(default_factory=list)
    duplicates: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    pending: list[tuple[int, str]] = field(default_factory=list)
    sessions: int = 0
    ignored: int = 0
    refused: int = 0  # malformed or stale (replayed) events, each logged
    touched_tenants: set[int] = field(default_factory=set)
    # Open, unassigned conversations with new inbound messages (auto-assignment's candidates) → tenant.
    assignable: dict[int, int] = field(default_factory=dict)


def _record_inbound(tenant_id: int, event: BridgeEvent, result: IngestResult, slot_id: int | None) -> None:
    wa_id = event.chat_id or "unknown"
    contact = get_or_create_contact(tenant_id=tenant_id, wa_id=wa_id, name="" if event.from_me else event.contact_name)
    conversation, conversation_created = get_or_create_conversation(tenant_id=tenant_id, contact=contact)
    when = event.timestamp or timezone.now()
    direction = Message.Direction.OUT if event.from_me else Message.Direction.IN
    status = Message.Status.SENT if event.from_me else Message.Status.RECEIVED
    payload: dict = {}
    if event.media:
        payload["media"] = event.media
    if event.error_code:
        payload["error"] = {"code": event.error_code, "reason": event.error_reason}
    defaults = dict(
        conversation=conversation, contact=contact, direction=direction, type=(event.message_type or "text")[:32],
        text=event.text, payload=payload, reply_to=event.reply_to[:255], status=status,
        status_rank=Message.RANK[status], provider_timestamp=event.timestamp,
        sent_at=when if event.from_me else None,
    )
    if event.provider_message_id:
        # The unique (tenant, provider_message_id) constraint is the dedupe: a
        # redelivery, even a concurrent one, finds the first row.
        message, created = Message.objects.get_or_create(
            tenant_id=tenant_id, provider_message_id=event.provider_message_id[:255], defaults=defaults)
    else:
        message, created = Message.objects.create(tenant_id=tenant_id, **defaults), True
    if not created:
        result.duplicates += 1
        return
    # Before the events below: they carry media.status = pending (or failed) from the start.
    record_inbound_media(message=message, media=event.media, slot_id=slot_id)
    if event.from_me:
        Conversation.objects.filter(pk=conversation.pk).update(last_message_at=when)
        publish_loaded_message(event_type="message.sent", message=message)
        return
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=when, last_inbound_at=when, unread_count=F("unread_count") + 1)
    reopened = reopen_on_inbound(conversation_id=conversation.pk)
    result.received.append(message.pk)
    if not conversation.assignee_id and (reopened or conversation.status == Conversation.Status.OPEN):
        result.assignable[conversation.pk] = tenant_id
    result.touched_tenants.add(tenant_id)
    if conversation_created:
        # Made by this transaction, so nobody else counted on it yet: the counters are known.
        conversation.last_message_at = conversation.last_inbound_at = when.astimezone(dt_timezone.utc)
        conversation.unread_count = 1
    else:
        conversation = Conversation.objects.select_related("contact").get(pk=conversation.pk)
    # One publish for both: the fast path reads what they owe and marks them delivered once.
    publish_events([(tenant_id, "message.received", message_representation(message)),
                    (tenant_id, "conversation.updated", conversation_event_data(conversation))])


@transaction.atomic
def ingest_events(*, routed: list[tuple[int, BridgeEvent]], slot_id: int | None = None) -> IngestResult:
    """Store inbound messages and statuses of one webhook delivery, all or nothing.
    `slot_id`: the slot the delivery came from (WAHA), where its media files wait."""
    result = IngestResult()
    for tenant_id, event in routed:
        if event.kind == "message":
            _record_inbound(tenant_id, event, result, slot_id)
        elif event.kind == "status" and event.provider_message_id:
            # Three acks follow every send, each its own webhook request: their fan-out (live
            # inbox ticks, tenants' webhooks, metrics) goes to the relay in batches, so the web
            # process only records them. Inbound messages keep the fast path: a person waits.
            with fan_out_by_relay():
                outcome = apply_status(
                    tenant_id=tenant_id, provider_message_id=event.provider_message_id, status=event.status,
                    error_code=event.error_code, error_reason=event.error_reason, pricing=event.pricing,
                    occurred_at=event.timestamp,
                )
            result.statuses[outcome] = result.statuses.get(outcome, 0) + 1
            if outcome == "pending":
                result.pending.append((tenant_id, event.provider_message_id))
        else:
            result.ignored += 1
    return result


def refusal(event: BridgeEvent) -> str | None:
    """Why a signed event is not taken (malformed, or outside the freshness window), or None.

    A valid signature proves who made the body, not when: a captured delivery
    replayed later verifies just as well. What it claims to be, and its date, decide.
    """
    if event.kind == "invalid":
        return f"malformed: {event.error_reason}"
    if event.kind not in ("message", "status", "session"):
        return None
    if event.emitted_at is None:
        return "no timestamp, so no way to tell a replay"
    max_age = settings.INTAKE_MAX_STATE_AGE_SECONDS if event.kind == "session" else settings.INTAKE_MAX_EVENT_AGE_SECONDS
    now = timezone.now()
    if event.emitted_at < now - timedelta(seconds=max_age):
        return f"stale: emitted {event.emitted_at.isoformat()}, more than {max_age} s ago"
    if event.emitted_at > now + timedelta(seconds=settings.INTAKE_MAX_CLOCK_SKEW_SECONDS):
        return f"dated in the future: {event.emitted_at.isoformat()}"
    return None


def handle_bridge_events(*, events: list[BridgeEvent], slot_id: int | None = None, dialect: str) -> IngestResult:
    """Route verified webhook events to tenants and store them. Not atomic itself: session
    statuses are pooling's writes, messages one transaction of ours, follow-ups after commit."""
    routed: list[tuple[int, BridgeEvent]] = []
    sessions = refused = 0
    for event in events:
        reason = refusal(event)
        if reason:
            logger.warning("signed %s event %s for session %r (slot %s) refused, nothing stored: %s",
                           dialect, event.kind, event.session, slot_id, reason)
            refused += 1
            continue
        if dialect == "cloud":
            session = pooling.session_for_phone_number_id(event.session)
            tenant_id = session.tenant_id if session else None
        elif event.kind == "session":
            session = pooling.session_for_webhook(slot_id=slot_id, session_name=event.session)
            tenant_id = session.tenant_id if session else None
        else:  # messages and acks, most of the webhooks: the tenant is all they need
            session, tenant_id = None, pooling.tenant_for_webhook(slot_id=slot_id, session_name=event.session)
        if tenant_id is None:
            # Stored nowhere: a number or session no tenant holds has no owner to store it for.
            counters.incr("bridge_events_unrouted", dialect=dialect)
            logger.warning("webhook event for unknown session %r (slot %s, %s) dropped", event.session, slot_id, dialect)
            continue
        if event.kind == "session":
            me = event.raw.get("me") if isinstance(event.raw.get("me"), dict) else None
            if event.status:
                pooling.record_session_status(session=session, status=event.status, note="webhook", me=me,
                                              reported_at=event.emitted_at)
            sessions += 1
            continue
        routed.append((tenant_id, event))
    result = ingest_events(routed=routed, slot_id=slot_id) if routed else IngestResult()
    result.sessions = sessions
    result.refused = refused
    for tenant_id, provider_id in result.pending:
        apply_pending_statuses(tenant_id=tenant_id, provider_message_ids=[provider_id])
    for tenant_id in result.touched_tenants:
        pooling.touch_session_activity(tenant=Tenant(pk=tenant_id))
    for conversation_id, tenant_id in sorted(result.assignable.items()):
        try:
            auto_assign(conversation_id=conversation_id, tenant_id=tenant_id)
        except Exception:  # the message is stored; a conversation left unassigned shows in "unassigned"
            logger.exception("auto-assignment of conversation %s failed", conversation_id)
    return result
