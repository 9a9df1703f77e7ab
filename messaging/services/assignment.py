"""Who of the tenant's people answers a conversation: assign, reassign, and round-robin.

Auto-assignment (InboxSettings.auto_assign, off by default) gives an
unassigned open conversation that just received a message to the next
online member after the last one it chose. It runs after intake's commit:
it reads presence from Redis, which has no place inside a transaction.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction

from messaging import presence
from messaging.models import Conversation, InboxSettings
from messaging.services.activity import record_activity
from messaging.services.lifecycle import lock_conversation
from tenants.models import Membership, Tenant


def member_user(*, tenant_id: int, user_id: int):
    """The user if they are a member of the tenant, else None."""
    if not Membership.objects.filter(tenant_id=tenant_id, user_id=user_id).exists():
        return None
    return get_user_model().objects.filter(pk=user_id, is_active=True).first()


def _assign(conversation: Conversation, assignee, *, by=None, auto: bool = False) -> None:
    """Expects the conversation row locked."""
    previous = conversation.assignee_id
    conversation.assignee = assignee
    conversation.save(update_fields=["assignee"])
    record_activity(conversation=conversation, kind="assigned", actor=by,
                    data={"previous_assignee_id": previous, "auto": auto})


@transaction.atomic
def assign_conversation(*, conversation: Conversation, assignee_id: int | None, by=None) -> Conversation:
    """Assign to a member of the conversation's tenant, or unassign with None."""
    assignee = None
    if assignee_id is not None:
        assignee = member_user(tenant_id=conversation.tenant_id, user_id=assignee_id)
        if assignee is None:
            raise ValidationError({"assignee": f"User {assignee_id} is not a member of this tenant; "
                                               "pick one from GET /api/v1/members."})
    conversation = lock_conversation(conversation_id=conversation.pk)
    if conversation.assignee_id != (assignee.pk if assignee else None):
        _assign(conversation, assignee, by=by)
    return conversation


def inbox_settings(*, tenant: Tenant) -> InboxSettings:
    return InboxSettings.objects.filter(tenant=tenant).first() or InboxSettings(tenant=tenant)


@transaction.atomic
def update_inbox_settings(*, tenant: Tenant, auto_assign: bool) -> InboxSettings:
    settings_row, _ = InboxSettings.objects.select_for_update().get_or_create(tenant=tenant)
    settings_row.auto_assign = auto_assign
    settings_row.save(update_fields=["auto_assign", "updated_at"])
    return settings_row


def _next_in_turn(candidates: list[int], last: int | None) -> int:
    after = [user_id for user_id in candidates if last is None or user_id > last]
    return (after or candidates)[0]


def auto_assign(*, conversation_id: int, tenant_id: int | None = None) -> int | None:
    """Give an unassigned open conversation to the next online member, if the tenant wants that.
    Returns the assignee's id, or None when nothing was assigned. tenant_id: the conversation's,
    when the caller knows it (intake): most tenants leave auto-assignment off, and then that is
    the one read."""
    if tenant_id is None:
        tenant_id = Conversation.objects.filter(pk=conversation_id).values_list("tenant_id", flat=True).first()
    if tenant_id is None or not InboxSettings.objects.filter(tenant_id=tenant_id, auto_assign=True).exists():
        return None
    conversation = Conversation.objects.filter(pk=conversation_id, tenant_id=tenant_id) \
        .only("pk", "assignee_id", "status").first()
    if conversation is None or conversation.assignee_id or conversation.status != Conversation.Status.OPEN:
        return None
    online = presence.online_user_ids(tenant_id=tenant_id)
    members = set(Membership.objects.filter(tenant_id=tenant_id, user_id__in=online,
                                            user__is_active=True).values_list("user_id", flat=True))
    candidates = [user_id for user_id in online if user_id in members]
    if not candidates:
        return None
    with transaction.atomic():
        settings_row = InboxSettings.objects.select_for_update().get(tenant_id=tenant_id)
        conversation = lock_conversation(conversation_id=conversation_id)
        if conversation.assignee_id or conversation.status != Conversation.Status.OPEN:
            return None  # someone was quicker
        chosen = _next_in_turn(candidates, settings_row.last_assigned_user_id)
        settings_row.last_assigned_user_id = chosen
        settings_row.save(update_fields=["last_assigned_user_id", "updated_at"])
        _assign(conversation, get_user_model().objects.get(pk=chosen), auto=True)
    return chosen
