"""Private notes: written by members into a conversation, never sent to the contact.

A note is a row of its own, not a Message: nothing in the send path (jobs,
bridges, the sweeper) can ever see it. Its event, `note.created`, carries the
note's id, conversation and author but not its body, because the event also
goes to the tenant's webhooks and the Firestore mirror: the body is read back
by members through GET /api/v1/conversations/{id}/notes (docs/inbox.md).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction

from messaging.models import Conversation, Note
from messaging.services.activity import person
from waplatform.events import publish_event

MAX_NOTE_LENGTH = 10_000


def note_event_data(note: Note) -> dict:
    return {"id": note.pk, "conversation_id": note.conversation_id, "author": person(note.author),
            "created_at": note.created_at.isoformat()}


@transaction.atomic
def create_note(*, conversation: Conversation, author, body: str) -> Note:
    body = body.strip()
    if not body:
        raise ValidationError({"body": "A note needs some text."})
    if len(body) > MAX_NOTE_LENGTH:
        raise ValidationError({"body": f"A note is at most {MAX_NOTE_LENGTH} characters; this one is {len(body)}."})
    note = Note.objects.create(tenant_id=conversation.tenant_id, conversation=conversation, author=author, body=body)
    publish_event(tenant_id=conversation.tenant_id, type="note.created", data=note_event_data(note))
    return note


@transaction.atomic
def delete_note(*, note: Note) -> None:
    data = note_event_data(note)
    note.delete()
    publish_event(tenant_id=note.tenant_id, type="note.deleted", data=data)
