"""Writes for messages: accept a send, deliver it, ingest what bridges report.

Rules the functions keep (docs/messaging.md):
- the database is the source of truth; a job or Redis key only points at a row;
- no network I/O inside a transaction (bridge calls, webhooks, Redis enqueues
  run after commit);
- status only moves up Message.RANK, applied with a conditional UPDATE, so two
  acks racing each other can never move a message backwards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from messaging.models import Contact, Conversation, Message, PendingStatus
from pooling import services as pooling
from pooling.bridges.base import BridgeEvent, OutboundMessage, PermanentBridgeError, TransientBridgeError
from tenants.models import Tenant
from waplatform import alerts
from waplatform.events import publish_event
from waplatform.redis import get_redis
from waplatform.queues import enqueue_many, enqueue_on_commit, ensure_capacity, get_queue

logger = logging.getLogger(__name__)

STATUS_TIME_FIELD = {
    Message.Status.SENT: "sent_at",
    Message.Status.DELIVERED: "delivered_at",
    Message.Status.READ: "read_at",
    Message.Status.FAILED: "failed_at",
}
_DIGITS = re.compile(r"^\+?[\d\s().-]+$")
_CHAT_ID = re.compile(r"^[\w.-]{3,64}@(c\.us|g\.us|lid|newsletter)$")


class SendRefused(Exception):
    """The API turns these into 4xx answers with `code`."""

    code = "invalid"
    http_status = 400


class NoWhatsAppSession(SendRefused):
    code = "no_session"
    http_status = 409


class IdempotencyConflict(SendRefused):
    code = "idempotency_conflict"
    http_status = 409


# --- helpers ----------------------------------------------------------------


def normalise_recipient(to: str) -> str:
    """E.164 digits (formatting and '+' dropped) or a WhatsApp chat id; ValueError otherwise."""
    to = (to or "").strip()
    if _CHAT_ID.match(to):
        return to[: -len("@c.us")] if to.endswith("@c.us") else to
    if _DIGITS.match(to):
        digits = re.sub(r"\D", "", to)
        if 6 <= len(digits) <= 15 and not digits.startswith("0"):
            return digits
    raise ValueError("'to' must be a phone number in international format (E.164 digits, e.g. 16505551234) or a chat id")


def request_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def message_event_data(message: Message) -> dict:
    contact = message.contact
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "contact": {"id": contact.pk, "wa_id": contact.wa_id, "name": contact.name},
        "direction": message.direction,
        "type": message.type,
        "text": message.text,
        "payload": message.payload,
        "reply_to": message.reply_to,
        "status": message.status,
        "provider_message_id": message.provider_message_id,
        "error_code": message.error_code,
        "error_reason": message.error_reason,
        "accepted_at": message.accepted_at.isoformat() if message.accepted_at else None,
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "delivered_at": message.delivered_at.isoformat() if message.delivered_at else None,
        "read_at": message.read_at.isoformat() if message.read_at else None,
    }


def conversation_event_data(conversation: Conversation) -> dict:
    return {
        "conversation_id": conversation.pk,
        "contact": {"id": conversation.contact_id, "wa_id": conversation.contact.wa_id, "name": conversation.contact.name},
        "last_message_at": conversation.last_message_at.isoformat() if conversation.last_message_at else None,
        "last_inbound_at": conversation.last_inbound_at.isoformat() if conversation.last_inbound_at else None,
        "unread_count": conversation.unread_count,
    }


def _publish_message(event_type: str, message_id: int) -> None:
    message = Message.objects.select_related("contact").get(pk=message_id)
    publish_event(tenant_id=message.tenant_id, type=event_type, data=message_event_data(message))


def _publish_conversation(conversation_id: int) -> None:
    conversation = Conversation.objects.select_related("contact").get(pk=conversation_id)
    publish_event(tenant_id=conversation.tenant_id, type="conversation.updated",
                  data=conversation_event_data(conversation))


def get_or_create_contact(*, tenant_id: int, wa_id: str, name: str = "") -> Contact:
    # get_or_create retries the read on IntegrityError inside a savepoint, so two
    # first messages from one number racing each other end with one row.
    contact, created = Contact.objects.get_or_create(tenant_id=tenant_id, wa_id=wa_id, defaults={"name": name[:255]})
    if name and not created and contact.name != name:
        Contact.objects.filter(pk=contact.pk).update(name=name[:255])
        contact.name = name
    return contact


def get_or_create_conversation(*, tenant_id: int, contact: Contact) -> tuple[Conversation, bool]:
    return Conversation.objects.get_or_create(
        tenant_id=tenant_id, contact=contact, defaults={"last_message_at": timezone.now()})


def _delay_with_jitter(base: float, attempt: int, cap: float) -> float:
    # "Full jitter" backoff: spreads retries of a burst that failed together.
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)


# --- send: accept ------------------------------------------------------------


@dataclass
class Accepted:
    message: Message
    created: bool


@transaction.atomic
def send_message(
    *,
    tenant: Tenant,
    to: str,
    type: str,
    text: str = "",
    payload: dict | None = None,
    reply_to: str = "",
    idempotency_key: str = "",
    body_hash: str = "",
) -> Accepted:
    """Accept an outbound message: write it `queued` and enqueue its delivery on commit.

    With an idempotency key, the same key and body return the first message
    (created=False); the same key with another body raises IdempotencyConflict.
    """
    if idempotency_key:
        existing = _idempotent_replay(tenant, idempotency_key, body_hash)
        if existing is not None:
            return Accepted(existing, created=False)
    if not pooling.has_wanted_session(tenant=tenant):
        raise NoWhatsAppSession(
            "This tenant has no WhatsApp session: start one with POST /api/v1/session/start and scan the QR code."
        )
    if type == Message.Type.TEMPLATE and not _on_cloud_api(tenant):
        raise SendRefused("Template messages need a Cloud API number; WhatsApp Web sessions cannot send them.")
    reply_to = _resolve_reference(tenant, reply_to, "reply_to")
    if type == Message.Type.REACTION:
        payload = {**(payload or {}), "message_id": _resolve_reference(tenant, (payload or {}).get("message_id", ""),
                                                                          "reaction.message_id")}
    queue = tenant.tier.send_queue
    ensure_capacity(queue)  # refuse with 503 before writing a row no worker will take soon
    contact = get_or_create_contact(tenant_id=tenant.pk, wa_id=to)
    conversation, conversation_created = get_or_create_conversation(tenant_id=tenant.pk, contact=contact)
    now = timezone.now()
    message = Message(
        tenant=tenant,
        conversation=conversation,
        contact=contact,
        direction=Message.Direction.OUT,
        type=type,
        text=text,
        payload=payload or {},
        reply_to=reply_to,
        status=Message.Status.QUEUED,
        status_rank=Message.RANK[Message.Status.QUEUED],
        idempotency_key=idempotency_key,
        request_hash=body_hash,
        next_attempt_at=now,
    )
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:
        # Another request with the same key won the race: answer as its replay.
        existing = _idempotent_replay(tenant, idempotency_key, body_hash) if idempotency_key else None
        if existing is None:
            raise
        return Accepted(existing, created=False)
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=now)

    enqueue_on_commit("messaging.jobs.deliver_message", message.pk, queue=queue)
    _publish_message("message.queued", message.pk)
    if conversation_created:
        _publish_conversation(conversation.pk)
    return Accepted(message, created=True)


def _on_cloud_api(tenant: Tenant) -> bool:
    # A session with a phone_number_id is spoken to in the Cloud dialect (pooling.bridging).
    from pooling.models import WhatsAppSession

    return WhatsAppSession.objects.filter(tenant=tenant).exclude(phone_number_id="").exists()


def _resolve_reference(tenant: Tenant, ref: str, field_name: str) -> str:
    """A message reference is our message id (digits) or a WhatsApp message id, kept as given."""
    ref = (ref or "").strip()
    if not ref.isdigit():
        return ref
    provider_id = (
        Message.objects.filter(tenant=tenant, pk=int(ref)).values_list("provider_message_id", flat=True).first()
    )
    if provider_id is None:
        raise SendRefused(f"{field_name}: no message {ref} in this tenant.")
    if not provider_id:
        raise SendRefused(f"{field_name}: message {ref} has not been sent yet, so WhatsApp cannot refer to it.")
    return provider_id


def _idempotent_replay(tenant: Tenant, key: str, body_hash: str) -> Message | None:
    existing = Message.objects.filter(tenant=tenant, idempotency_key=key).first()
    if existing is not None and existing.request_hash != body_hash:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request body; use a new key for a new message."
        )
    return existing


# --- send: deliver -------------------------------------------------------------


def _claim(message_id: int) -> Message | None:
    """Take the message for one send attempt, or None when there is nothing to do.

    skip_locked: a second job for the same message (the sweeper's, or a
    duplicate) walks away instead of queueing behind the lock. The lease keeps
    other jobs off a `sending` message until it ends, so a killed worker's
    message is picked up again, and a live one's is not sent twice.
    """
    now = timezone.now()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk=message_id, direction=Message.Direction.OUT)
            .filter(Q(status=Message.Status.QUEUED) | Q(status=Message.Status.SENDING, lease_expires_at__lt=now))
            .first()
        )
        if message is None:
            return None
        if message.status == Message.Status.QUEUED and message.next_attempt_at and message.next_attempt_at > now + timedelta(seconds=1):
            return None  # an early duplicate; the job scheduled for next_attempt_at will come
        if message.accepted_at < now - timedelta(seconds=settings.MESSAGE_EXPIRE_AFTER_SECONDS):
            _fail_locked(message, code="expired", reason="Not sent within MESSAGE_EXPIRE_AFTER_SECONDS of acceptance.")
            return None
        message.status = Message.Status.SENDING
        message.status_rank = Message.RANK[Message.Status.SENDING]
        message.lease_expires_at = now + timedelta(seconds=settings.MESSAGE_SEND_LEASE_SECONDS)
        message.save(update_fields=["status", "status_rank", "lease_expires_at"])
    return message


def _fail_locked(message: Message, *, code: str, reason: str) -> None:
    updated = Message.objects.filter(pk=message.pk, status_rank__lt=Message.RANK[Message.Status.FAILED]).update(
        status=Message.Status.FAILED,
        status_rank=Message.RANK[Message.Status.FAILED],
        error_code=str(code)[:64],
        error_reason=reason,
        failed_at=timezone.now(),
        lease_expires_at=None,
        next_attempt_at=None,
    )
    if updated:
        _publish_message("message.failed", message.pk)


@transaction.atomic
def fail_message(*, message: Message, code: str, reason: str) -> None:
    _fail_locked(message, code=code, reason=reason)


@transaction.atomic
def postpone_message(
    *, message: Message, delay: float, reason: str = "", paced: bool = False, booked_at: datetime | None = None
) -> None:
    """Put a `sending` message back to `queued`, due in `delay` seconds (or at its
    existing booking `booked_at`), and schedule its job."""
    due = booked_at or timezone.now() + timedelta(seconds=delay)
    updated = Message.objects.filter(pk=message.pk, status=Message.Status.SENDING).update(
        status=Message.Status.QUEUED,
        status_rank=Message.RANK[Message.Status.QUEUED],
        next_attempt_at=due,
        lease_expires_at=None,
        paced_until=due if paced else None,
        error_reason=reason[:1000] if reason else F("error_reason"),
    )
    if updated:
        schedule_delivery(message_id=message.pk, queue=message.tenant.tier.send_queue, delay=delay)


def schedule_delivery(*, message_id: int, queue: str, delay: float) -> None:
    """After commit, enqueue the delivery job now or in `delay` seconds (rq's scheduler runs it)."""
    enqueue_on_commit("messaging.jobs.deliver_message", message_id, queue=queue, delay=delay)


def _outbound(message: Message) -> OutboundMessage:
    p = message.payload or {}
    return OutboundMessage(
        to=message.contact.wa_id,
        type=message.type,
        text=message.text,
        media_url=p.get("url", ""),
        caption=p.get("caption", "") or (message.text if message.type != "text" else ""),
        filename=p.get("filename", ""),
        latitude=p.get("latitude"),
        longitude=p.get("longitude"),
        location_name=p.get("name", ""),
        reaction_to=p.get("message_id", ""),
        emoji=p.get("emoji", ""),
        template=p.get("template"),
        reply_to=message.reply_to,
        correlation=f"wap:{message.tenant_id}:{message.pk}",
    )


def deliver_message(*, message_id: int) -> str:
    """One send attempt. Returns what happened (for logs and tests)."""
    message = _claim(message_id)
    if message is None:
        return "nothing to do"
    message = Message.objects.select_related("tenant__tier", "contact").get(pk=message.pk)
    tenant = message.tenant
    try:
        sending = pooling.get_sending_session(tenant=tenant)
    except pooling.NoSession as exc:
        fail_message(message=message, code="no_session", reason=str(exc))
        return "failed: no session"
    except pooling.SessionNotReady as exc:
        # Not an attempt: the slot is down or the session not WORKING; wait for failover.
        postpone_message(message=message, delay=settings.MESSAGE_SESSION_WAIT_SECONDS, reason=str(exc))
        return f"waiting: {exc}"
    paused_for = tenant_send_pause_seconds(tenant_id=tenant.pk)
    if paused_for:
        postpone_message(message=message, delay=paused_for, reason="sends paused after Meta's spam rate limit (131048)")
        return f"paused for {paused_for:.0f}s"
    try:
        booked_wait = _booked_wait_seconds(message)
        if booked_wait is not None:
            # Already booked: rq's scheduler works in whole seconds and may run the job
            # early. Booking again here would push the slot out on every early run (two
            # paced messages could then chase their own bookings forever).
            if booked_wait > settings.PACING_INLINE_WAIT_SECONDS:
                postpone_message(message=message, delay=booked_wait, paced=True, booked_at=message.paced_until)
                return f"paced: {booked_wait:.2f}s (booked)"
            if booked_wait > 0:
                time.sleep(booked_wait)
        else:
            from messaging.pacing import reserve_send

            pace = reserve_send(
                number_key=f"{sending.slot_id}:{sending.session_name}",
                recipient=message.contact.wa_id,
                dialect=sending.dialect,
                tier_rate=tenant.tier.messages_per_second,
            )
            if pace.wait_seconds > settings.PACING_INLINE_WAIT_SECONDS:
                postpone_message(message=message, delay=pace.wait_seconds, paced=True)
                return f"paced: {pace.wait_seconds:.2f}s"
            if pace.wait_seconds > 0:
                time.sleep(pace.wait_seconds)
        Message.objects.filter(pk=message.pk).update(attempts=F("attempts") + 1)
        attempt = message.attempts + 1
        try:
            result = sending.bridge.send(sending.session_name, _outbound(message))
        except PermanentBridgeError as exc:
            if str(exc.code) == SPAM_RATE_LIMIT_CODE:
                # Meta's spam limit is the number's, not this message's: stop the tenant's
                # sends for a while and keep the message; waiting message by message would
                # only feed the limit.
                pause_tenant_sends(tenant=tenant, reason=exc.reason)
                postpone_message(message=message, delay=settings.SPAM_PAUSE_SECONDS, reason=f"{exc.code}: {exc.reason}")
                return f"paused: {exc}"
            fail_message(message=message, code=exc.code or "permanent", reason=_explain(exc))
            return f"failed: {exc}"
        except TransientBridgeError as exc:
            if attempt >= settings.MESSAGE_MAX_ATTEMPTS:
                fail_message(message=message, code=exc.code or "transient",
                             reason=f"gave up after {attempt} attempts: {exc.reason}")
                return f"failed: {exc}"
            delay = _delay_with_jitter(settings.MESSAGE_RETRY_BASE_SECONDS, attempt,
                                       settings.MESSAGE_RETRY_MAX_DELAY_SECONDS)
            postpone_message(message=message, delay=delay, reason=f"attempt {attempt}: {exc}")
            return f"retry in {delay:.1f}s: {exc}"
    finally:
        close = getattr(sending.bridge, "close", None)
        if close:
            close()
    record_sent(message_id=message.pk, provider_message_id=result.provider_message_id, slot_id=sending.slot_id)
    pooling.touch_session_activity(tenant=tenant)
    # After our commit: a status that beat us here is now in PendingStatus (see apply_pending_statuses).
    apply_pending_statuses(tenant_id=tenant.pk, provider_message_ids=[result.provider_message_id])
    return "sent"


SPAM_RATE_LIMIT_CODE = "131048"
REENGAGEMENT_CODE = "131047"


def _pause_key(tenant_id: int) -> str:
    return f"wap:send-paused:{tenant_id}"


def pause_tenant_sends(*, tenant: Tenant, reason: str) -> None:
    """Hold every send of the tenant for SPAM_PAUSE_SECONDS (Meta 131048) and tell the operators."""
    get_redis().set(_pause_key(tenant.pk), reason or "131048", ex=settings.SPAM_PAUSE_SECONDS)
    alerts.raise_alert(
        kind="spam_rate_limit",
        key=tenant.slug,
        message=f"Meta's spam rate limit (131048) hit {tenant.slug}: its sends are paused for "
        f"{settings.SPAM_PAUSE_SECONDS // 60} min. {reason}".strip(),
    )


def tenant_send_pause_seconds(*, tenant_id: int) -> float:
    ttl = get_redis().pttl(_pause_key(tenant_id))
    return ttl / 1000 if ttl and ttl > 0 else 0.0


def _explain(exc: PermanentBridgeError) -> str:
    if str(exc.code) == REENGAGEMENT_CODE:
        return (f"{exc.reason} — more than 24 h since the contact last wrote: only a template message "
                "(type \"template\") can reach them until they write again.")
    return exc.reason


def _booked_wait_seconds(message: Message) -> float | None:
    """Seconds until the send time this message already booked, or None if it booked none."""
    if not message.paced_until:
        return None
    return max(0.0, (message.paced_until - timezone.now()).total_seconds())


@transaction.atomic
def record_sent(*, message_id: int, provider_message_id: str, slot_id: int | None = None) -> bool:
    updated = Message.objects.filter(pk=message_id, status_rank__lt=Message.RANK[Message.Status.SENT]).update(
        status=Message.Status.SENT,
        status_rank=Message.RANK[Message.Status.SENT],
        provider_message_id=provider_message_id,
        sent_at=timezone.now(),
        lease_expires_at=None,
        next_attempt_at=None,
        paced_until=None,
        error_code="",
        error_reason="",
        sent_via_slot_id=slot_id,
    )
    if updated:
        _publish_message("message.sent", message_id)
    return bool(updated)


# --- statuses ----------------------------------------------------------------------


def _pricing_fields(pricing: dict | None) -> dict:
    if not pricing:
        return {}
    return {
        "pricing_category": str(pricing.get("category") or "")[:32],
        "pricing_model": str(pricing.get("pricing_model") or "")[:32],
        "pricing_type": str(pricing.get("type") or "")[:32],
    }


def apply_status(
    *,
    tenant_id: int,
    provider_message_id: str,
    status: str,
    error_code: str = "",
    error_reason: str = "",
    pricing: dict | None = None,
    occurred_at: datetime | None = None,
    keep_if_unknown: bool = True,
) -> str:
    """Move an outbound message up to `status`. Returns applied | stale | pending | ignored.

    Must run inside a transaction (the caller's). The UPDATE carries the rank
    condition, so concurrent acks cannot move the message backwards.
    """
    if status not in Message.RANK or status in (Message.Status.QUEUED, Message.Status.SENDING, Message.Status.RECEIVED):
        return "ignored"
    rank = Message.RANK[status]
    changes: dict = {"status": status, "status_rank": rank, **_pricing_fields(pricing)}
    when = occurred_at or timezone.now()
    if status in STATUS_TIME_FIELD:
        changes[STATUS_TIME_FIELD[status]] = when
    if status == Message.Status.FAILED:
        changes.update(error_code=str(error_code)[:64], error_reason=error_reason, lease_expires_at=None)
    mine = Message.objects.filter(tenant_id=tenant_id, provider_message_id=provider_message_id,
                                  direction=Message.Direction.OUT)
    updated = mine.filter(status_rank__lt=rank).update(**changes)
    if updated:
        message_id = mine.values_list("pk", flat=True).first()
        _publish_message("message.failed" if status == Message.Status.FAILED else "message.status", message_id)
        return "applied"
    if mine.exists():
        if pricing:
            mine.update(**_pricing_fields(pricing))  # pricing can come with a late, stale status
        return "stale"
    if not keep_if_unknown:
        return "ignored"
    PendingStatus.objects.create(
        tenant_id=tenant_id, provider_message_id=provider_message_id, status=status,
        error_code=str(error_code)[:64], error_reason=error_reason, pricing=pricing, occurred_at=occurred_at,
    )
    return "pending"


def apply_pending_statuses(*, tenant_id: int, provider_message_ids: list[str]) -> int:
    """Apply statuses that arrived before their message was recorded. Call after commit.

    Both sides check after their own commit (the sender after `sent`, the
    intake after storing a pending row), so whichever commits second sees the
    other's row; the sweeper is the backstop.
    """
    applied = 0
    ids = [i for i in provider_message_ids if i]
    if not ids:
        return 0
    with transaction.atomic():
        pending = list(
            PendingStatus.objects.select_for_update(skip_locked=True)
            .filter(tenant_id=tenant_id, provider_message_id__in=ids)
            .order_by("pk")
        )
        for row in pending:
            outcome = apply_status(
                tenant_id=row.tenant_id, provider_message_id=row.provider_message_id, status=row.status,
                error_code=row.error_code, error_reason=row.error_reason, pricing=row.pricing,
                occurred_at=row.occurred_at, keep_if_unknown=False,
            )
            if outcome != "ignored":
                row.delete()
                applied += outcome == "applied"
    return applied


# --- inbound ----------------------------------------------------------------------


@dataclass
class IngestResult:
    received: list[int] = field(default_factory=list)
    duplicates: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    pending: list[tuple[int, str]] = field(default_factory=list)
    sessions: int = 0
    ignored: int = 0
    touched_tenants: set[int] = field(default_factory=set)


def _record_inbound(tenant_id: int, event: BridgeEvent, result: IngestResult) -> None:
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
    if event.from_me:
        Conversation.objects.filter(pk=conversation.pk).update(last_message_at=when)
        _publish_message("message.sent", message.pk)
        return
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=when, last_inbound_at=when, unread_count=F("unread_count") + 1)
    result.received.append(message.pk)
    result.touched_tenants.add(tenant_id)
    _publish_message("message.received", message.pk)
    _publish_conversation(conversation.pk)


@transaction.atomic
def ingest_events(*, routed: list[tuple[int, BridgeEvent]]) -> IngestResult:
    """Store inbound messages and statuses of one webhook delivery, all or nothing."""
    result = IngestResult()
    for tenant_id, event in routed:
        if event.kind == "message":
            _record_inbound(tenant_id, event, result)
        elif event.kind == "status" and event.provider_message_id:
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


def handle_bridge_events(*, events: list[BridgeEvent], slot_id: int | None = None, dialect: str) -> IngestResult:
    """Route verified webhook events to tenants and store them. Not atomic itself: session
    statuses are pooling's writes, messages one transaction of ours, follow-ups after commit."""
    routed: list[tuple[int, BridgeEvent]] = []
    sessions = 0
    for event in events:
        if dialect == "cloud":
            session = pooling.session_for_phone_number_id(event.session)
        else:
            session = pooling.session_for_webhook(slot_id=slot_id, session_name=event.session)
        if session is None:
            logger.warning("webhook event for unknown session %r (slot %s, %s) dropped", event.session, slot_id, dialect)
            continue
        if event.kind == "session":
            me = event.raw.get("me") if isinstance(event.raw.get("me"), dict) else None
            if event.status:
                pooling.record_session_status(session=session, status=event.status, note="webhook", me=me)
            sessions += 1
            continue
        routed.append((session.tenant_id, event))
    result = ingest_events(routed=routed) if routed else IngestResult()
    result.sessions = sessions
    for tenant_id, provider_id in result.pending:
        apply_pending_statuses(tenant_id=tenant_id, provider_message_ids=[provider_id])
    for tenant_id in result.touched_tenants:
        pooling.touch_session_activity(tenant=Tenant(pk=tenant_id))
    return result


@transaction.atomic
def mark_conversation_read(*, conversation: Conversation) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(unread_count=0)
    _publish_conversation(conversation.pk)


# --- the sweeper ----------------------------------------------------------------------


@dataclass
class SweepReport:
    messages_requeued: int = 0
    messages_expired: int = 0
    deliveries_requeued: int = 0
    pending_applied: int = 0
    pending_expired: int = 0

    def lines(self) -> list[str]:
        return [f"{k}={v}" for k, v in vars(self).items()]


def sweep_messages(report: SweepReport) -> None:
    """Re-enqueue messages whose job is lost: queued past due, or sending past their lease.

    Each re-enqueued row's next_attempt_at moves to now, so a backlog that has
    not reached the job yet is not enqueued again by the next sweep.
    """

    now = timezone.now()
    stuck_before = now - timedelta(seconds=settings.SWEEP_STUCK_AFTER_SECONDS)
    expired_before = now - timedelta(seconds=settings.MESSAGE_EXPIRE_AFTER_SECONDS)
    for message in Message.objects.filter(status=Message.Status.QUEUED, accepted_at__lt=expired_before)[
        : settings.SWEEP_BATCH_SIZE
    ]:
        fail_message(message=message, code="expired", reason="Not sent within MESSAGE_EXPIRE_AFTER_SECONDS.")
        report.messages_expired += 1
    stuck = (
        Message.objects.filter(direction=Message.Direction.OUT)
        .filter(
            Q(status=Message.Status.QUEUED, next_attempt_at__lt=stuck_before)
            | Q(status=Message.Status.QUEUED, next_attempt_at__isnull=True, accepted_at__lt=stuck_before)
            | Q(status=Message.Status.SENDING, lease_expires_at__lt=now)
            | Q(status=Message.Status.SENDING, lease_expires_at__isnull=True)
        )
        .select_related("tenant__tier")
        .order_by("pk")[: settings.SWEEP_BATCH_SIZE]
    )
    by_queue: dict[str, list[int]] = {}
    for message in stuck:
        by_queue.setdefault(message.tenant.tier.send_queue, []).append(message.pk)
    for queue, ids in by_queue.items():
        rq_queue = get_queue(queue)
        room = settings.QUEUE_MAX_WAITING - rq_queue.count
        if room <= 0:
            logger.warning("sweep: queue %s full, %d stuck messages wait for the next sweep", queue, len(ids))
            continue
        ids = ids[:room]
        # Bump first: a sweep that dies after this line leaves rows due again in a minute.
        Message.objects.filter(pk__in=ids, status=Message.Status.QUEUED).update(next_attempt_at=now)
        enqueue_many("messaging.jobs.deliver_message", [(i,) for i in ids], queue=queue)
        report.messages_requeued += len(ids)


def sweep_pending_statuses(report: SweepReport) -> None:
    cutoff = timezone.now() - timedelta(seconds=settings.PENDING_STATUS_TTL_SECONDS)
    report.pending_expired = PendingStatus.objects.filter(created_at__lt=cutoff).delete()[0]
    known = PendingStatus.objects.filter(
        Exists(Message.objects.filter(tenant_id=OuterRef("tenant_id"),
                                      provider_message_id=OuterRef("provider_message_id")))
    ).values_list("tenant_id", "provider_message_id")[: settings.SWEEP_BATCH_SIZE]
    for tenant_id, provider_id in set(known):
        report.pending_applied += apply_pending_statuses(tenant_id=tenant_id, provider_message_ids=[provider_id])


def sweep() -> SweepReport:
    """The every-minute sweep: lost message jobs, due webhook deliveries, old pending statuses."""
    from messaging import webhooks_out

    report = SweepReport()
    sweep_messages(report)
    report.deliveries_requeued = webhooks_out.requeue_due_deliveries()
    sweep_pending_statuses(report)
    return report


# --- demos ---------------------------------------------------------------------


def simulate_inbound(*, tenant: Tenant, sender: str, text: str, name: str = "") -> str:
    """Make the tenant's sandbox worker deliver an inbound message (sandbox slots only).

    Returns the WhatsApp id the sandbox gave it; the message itself arrives
    through the normal signed webhook, like any other.
    """
    import httpx

    from pooling.bridging import session_name_on_bridge
    from pooling.models import Assignment, Slot, WhatsAppSession

    session = WhatsAppSession.objects.filter(tenant=tenant).first()
    assignment = Assignment.objects.select_related("slot").filter(tenant=tenant, ended_at__isnull=True).first()
    if session is None or assignment is None:
        raise SendRefused(f"Tenant {tenant.slug} has no running WhatsApp session on a slot.")
    slot = assignment.slot
    if slot.dialect != Slot.Dialect.SANDBOX:
        raise SendRefused(
            f"Tenant {tenant.slug} is on slot {slot} ({slot.dialect}); simulate_inbound only works on sandbox slots, "
            "never on a real WhatsApp connection.")
    response = httpx.post(
        f"{slot.base_url}/sandbox/inbound",
        json={"session": session_name_on_bridge(session), "from": sender, "text": text, "name": name},
        headers={"X-Api-Key": slot.api_key}, timeout=10,
    )
    if response.status_code >= 400:
        raise SendRefused(f"The sandbox worker refused: HTTP {response.status_code} {response.text[:300]}")
    return str(response.json().get("id", ""))
