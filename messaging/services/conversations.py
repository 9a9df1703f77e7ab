"""Contacts and conversations: found or created by whichever side writes first."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from messaging.models import Contact, Conversation
from messaging.services.payloads import publish_conversation


def get_or_create_contact(*, tenant_id: int, wa_id: str, name: str = "") -> Contact:
    # get_or_create retries the read on IntegrityError inside a savepoint, so two
    # first messages from one number racing each other end with one row.
    contact, created = Contact.objects.get_or_create(tenant_id=tenant_id, wa_id=wa_id, defaults={"name": name[:255]})
    # A name a member gave the contact wins over the push name the contact chose.
    if name and not created and contact.name != name and not contact.name_edited:
        Contact.objects.filter(pk=contact.pk).update(name=name[:255])
        contact.name = name
    return contact


def get_or_create_conversation(*, tenant_id: int, contact: Contact) -> tuple[Conversation, bool]:
    return Conversation.objects.get_or_create(
        tenant_id=tenant_id, contact=contact, defaults={"last_message_at": timezone.now()})


@transaction.atomic
def mark_conversation_read(*, conversation: Conversation) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(unread_count=0)
    publish_conversation(conversation_id=conversation.pk)
