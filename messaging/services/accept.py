"""Accepting an outbound message: check it, write it `queued`, enqueue its delivery on commit."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from messaging.models import Conversation, Message
from messaging.media.limits import MediaRefused
from messaging.services.batches import schedule_batch, send_lane
from messaging.services.conversations import get_or_create_contact, get_or_create_conversation
from messaging.services.media import media_for_sending
from messaging.services.payloads import publish_conversation, publish_loaded_message
from pooling import services as pooling
from pooling.models import WhatsAppSession
from tenants.models import Tenant
from waplatform.queues import ensure_capacity

# ASCII only: Python's \d and str.isdigit also take Arabic-Indic, fullwidth and other
# digits, which no bridge dials. Spaces, dots, dashes and parentheses are formatting;
# a newline or a tab is not.
_DIGITS = re.compile(r"\+?[0-9 ().-]+", re.ASCII)
_CHAT_ID = re.compile(r"[A-Za-z0-9_.-]{3,64}@(c\.us|g\.us|lid|newsletter)", re.ASCII)


class SendRefused(Exception):
    """The API turns these into 4xx answers with `code`."""

    code = "invalid"
    http_status = 400


class MediaNotSendable(SendRefused):
    def __init__(self, refusal: MediaRefused) -> None:
        super().__init__(refusal.detail)
        self.code = refusal.code


class NoWhatsAppSession(SendRefused):
    code = "no_session"
    http_status = 409


class TenantSuspended(SendRefused):
    code = "tenant_suspended"
    http_status = 403


class IdempotencyConflict(SendRefused):
    code = "idempotency_conflict"
    http_status = 409


def normalise_recipient(to: str) -> str:
    """E.164 digits (formatting and '+' dropped) or a WhatsApp chat id; ValueError otherwise."""
    to = (to or "").strip(" ")
    if _CHAT_ID.fullmatch(to):
        return to[: -len("@c.us")] if to.endswith("@c.us") else to
    if _DIGITS.fullmatch(to):
        digits = re.sub(r"[^0-9]", "", to)
        if 6 <= len(digits) <= 15 and not digits.startswith("0"):
            return digits
    raise ValueError("'to' must be a phone number in international format (E.164 digits, e.g. 16505551234) or a chat id")


def request_hash(body: dict) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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
    conversation: Conversation | None = None,
) -> Accepted:
    """Accept an outbound message: write it `queued` and enqueue its delivery on commit.

    With an idempotency key, the same key and body return the first message
    (created=False); the same key with another body raises IdempotencyConflict.
    conversation: the tenant's conversation with `to`, its contact loaded, when the caller
    holds it (an agent's reply): its two look-ups are skipped.
    """
    if conversation is not None and (conversation.tenant_id != tenant.pk or conversation.contact.wa_id != to):
        raise ValueError(f"conversation {conversation.pk} is not this tenant's conversation with {to}")
    if idempotency_key:
        existing = _idempotent_replay(tenant, idempotency_key, body_hash)
        if existing is not None:
            return Accepted(existing, created=False)
    if not tenant.is_active:
        # A service rule, not only the API's: agents, the inbox and commands send through here too.
        raise TenantSuspended("This tenant is suspended: nothing is sent until the platform operator reactivates it.")
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
    media = None
    if (payload or {}).get("media_id"):
        try:
            media = media_for_sending(tenant=tenant, media_id=int(payload["media_id"]), kind=type)
        except MediaRefused as exc:
            raise MediaNotSendable(exc) from None
        payload = {**payload, "filename": payload.get("filename") or media.original_filename}
    queue = tenant.tier.send_queue
    ensure_capacity(queue)  # refuse with 503 before writing a row no worker will take soon
    if conversation is None:
        contact = get_or_create_contact(tenant_id=tenant.pk, wa_id=to)
        conversation, conversation_created = get_or_create_conversation(tenant_id=tenant.pk, contact=contact)
    else:
        contact, conversation_created = conversation.contact, False
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
        media=media,
    )
    if not idempotency_key:
        message.save()  # no unique key it could collide on: no savepoint needed
    else:
        try:
            with transaction.atomic():
                message.save()
        except IntegrityError:
            # Another request with the same key won the race: answer as its replay.
            existing = _idempotent_replay(tenant, idempotency_key, body_hash)
            if existing is None:
                raise
            return Accepted(existing, created=False)
    Conversation.objects.filter(pk=conversation.pk).update(last_message_at=now)

    schedule_batch(tenant_id=tenant.pk, queue=queue, lane=send_lane(contact.pk))
    publish_loaded_message(event_type="message.queued", message=message)
    if conversation_created:
        publish_conversation(conversation_id=conversation.pk)
    return Accepted(message, created=True)


def _on_cloud_api(tenant: Tenant) -> bool:
    # A session with a phone_number_id is spoken to in the Cloud dialect (pooling.bridging).
    return WhatsAppSession.objects.filter(tenant=tenant).exclude(phone_number_id="").exists()


def _resolve_reference(tenant: Tenant, ref: str, field_name: str) -> str:
    """A message reference is our message id (digits) or the WhatsApp id of a message this tenant
    sent or received; a reference to nothing is refused rather than sent as a quote of nothing."""
    ref = (ref or "").strip()
    if not ref:
        return ref
    if not ref.isdigit():
        if not Message.objects.filter(tenant=tenant, provider_message_id=ref).exists():
            raise SendRefused(
                f"{field_name}: no message {ref!r} in this tenant; give the id of one of its messages "
                "(GET /api/v1/messages) or that message's provider_message_id.")
        return ref
    provider_id = (
        Message.objects.filter(tenant=tenant, pk=int(ref)).values_list("provider_message_id", flat=True).first()
    )
    if provider_id is None:
        raise SendRefused(f"{field_name}: no message {ref} in this tenant; give the id of one of its messages "
                          "(GET /api/v1/messages) or that message's provider_message_id.")
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
