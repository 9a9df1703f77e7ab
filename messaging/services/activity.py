"""A conversation's team-side history: one row per change, and the event that announces it."""

from __future__ import annotations

from messaging.models import Conversation, ConversationActivity
from waplatform.events import publish_event


def person(user) -> dict | None:
    """A member as events and the API name them (no e-mail: webhooks leave the platform)."""
    if user is None:
        return None
    return {"id": user.pk, "username": user.get_username(), "name": user.get_full_name() or user.get_username()}


def team_state(conversation: Conversation) -> dict:
    """The team fields of a conversation, carried by every conversation.* team event."""
    return {
        "status": conversation.status,
        "snoozed_until": conversation.snoozed_until.isoformat() if conversation.snoozed_until else None,
        "assignee": person(conversation.assignee),
        "labels": sorted(label.name for label in conversation.labels.all()),
    }


def record_activity(*, conversation: Conversation, kind: str, actor=None, data: dict | None = None) -> None:
    """Store the change in the history and publish `conversation.<kind>` (after commit).

    Runs inside the caller's transaction, so the row and the event commit with the change.
    """
    data = data or {}
    ConversationActivity.objects.create(
        tenant_id=conversation.tenant_id, conversation=conversation, kind=kind, actor=actor, data=data)
    publish_event(tenant_id=conversation.tenant_id, type=f"conversation.{kind}", data={
        "conversation_id": conversation.pk, **data, "by": person(actor), "conversation": team_state(conversation)})
