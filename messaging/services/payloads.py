"""The one shape of a message, and the events that carry it.

`message_fields` is the message as `GET /api/v1/messages/{id}` shows it, with
native datetimes; `message_representation` is that same dict ready for JSON.
The REST serializer, the event `data` (so every webhook) and the Firestore
document are all built from it: a tenant sees one message the same way
wherever it reaches them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.utils import timezone

from messaging.media.links import signed_link
from messaging.models import Conversation, MediaFile, Message
from waplatform.events import publish_event, publish_events


def message_fields(message: Message) -> dict[str, Any]:
    """`message.contact` (and `message.media`) should be loaded (select_related), or this costs a query."""
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
        "error": {"code": message.error_code, "reason": message.error_reason} if message.error_code else None,
        "pricing": {"category": message.pricing_category, "pricing_model": message.pricing_model,
                    "type": message.pricing_type} if message.pricing_category else None,
        "attempts": message.attempts,
        "accepted_at": message.accepted_at,
        "sent_at": message.sent_at,
        "delivered_at": message.delivered_at,
        "read_at": message.read_at,
        "failed_at": message.failed_at,
        "media": media_fields(message.media) if message.media_id else None,
    }


def media_fields(media: MediaFile) -> dict[str, Any]:
    """A message's file as every channel shows it. `url` (and `thumbnail_url` for images) are
    signed, expiring download links: no API key needed (docs/media.md)."""
    fields: dict[str, Any] = {
        "id": media.pk,
        "status": media.status,
        "reason": media.reason if media.status != MediaFile.Status.STORED else "",
        "kind": media.kind,
        "content_type": media.content_type,
        "size": media.size,
        "sha256": media.sha256,
        "filename": media.original_filename,
        "url": None,
        "thumbnail_url": None,
        "expires_at": None,
    }
    if media.status == MediaFile.Status.STORED:
        url, expires_at = signed_link(media.pk)
        fields.update(url=url, expires_at=_iso(expires_at))
        if media.thumbnail_key:
            fields["thumbnail_url"] = signed_link(media.pk, variant="thumb")[0]
    return fields


def message_representation(message: Message) -> dict[str, Any]:
    """The message as the API answers it (and as every event and webhook carries it)."""
    return {name: _iso(value) if isinstance(value, datetime) else value
            for name, value in message_fields(message).items()}


def _iso(value: datetime) -> str:
    # DRF's rendering of a datetime, so the event and the REST answer match to the character.
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def conversation_event_data(conversation: Conversation) -> dict:
    return {
        "conversation_id": conversation.pk,
        "contact": {"id": conversation.contact_id, "wa_id": conversation.contact.wa_id, "name": conversation.contact.name},
        "last_message_at": conversation.last_message_at.isoformat() if conversation.last_message_at else None,
        "last_inbound_at": conversation.last_inbound_at.isoformat() if conversation.last_inbound_at else None,
        "unread_count": conversation.unread_count,
    }


def publish_message(*, event_type: str, message_id: int) -> None:
    """The event goes out after the caller's transaction commits (publish_event defers it)."""
    publish_loaded_message(event_type=event_type,
                           message=Message.objects.select_related("contact", "media").get(pk=message_id))


def publish_loaded_message(*, event_type: str, message: Message) -> None:
    """publish_message for a message the caller just saved, its contact and media in hand (no read)."""
    publish_event(tenant_id=message.tenant_id, type=event_type, data=message_representation(message))


def publish_loaded_messages(*, event_type: str, messages) -> None:
    """publish_loaded_message for many, their contact and media loaded: one INSERT of their events."""
    publish_events([(m.tenant_id, event_type, message_representation(m)) for m in messages])


def publish_conversation(*, conversation_id: int) -> None:
    conversation = Conversation.objects.select_related("contact").get(pk=conversation_id)
    publish_event(tenant_id=conversation.tenant_id, type="conversation.updated",
                  data=conversation_event_data(conversation))
