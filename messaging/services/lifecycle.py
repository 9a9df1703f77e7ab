"""Resolve, reopen and snooze: a conversation's status for the support team.

A resolved or snoozed conversation opens again by itself when the contact
writes (`reopen_on_inbound`, called by intake in its transaction) or when its
snooze ends (`wake_snoozed`, every minute from waplatform.cron).
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from messaging.models import Conversation
from messaging.services.activity import record_activity

Status = Conversation.Status


def lock_conversation(*, conversation_id: int) -> Conversation:
    """The conversation row, locked. Must run inside a transaction."""
    return Conversation.objects.select_for_update(of=("self",)).select_related("assignee").get(pk=conversation_id)


def _set_status(conversation: Conversation, status: str, snoozed_until: datetime | None = None) -> None:
    conversation.status = status
    conversation.snoozed_until = snoozed_until
    conversation.save(update_fields=["status", "snoozed_until"])


@transaction.atomic
def resolve_conversation(*, conversation: Conversation, by=None) -> Conversation:
    conversation = lock_conversation(conversation_id=conversation.pk)
    if conversation.status == Status.RESOLVED:
        return conversation
    _set_status(conversation, Status.RESOLVED)
    record_activity(conversation=conversation, kind="resolved", actor=by)
    return conversation


@transaction.atomic
def reopen_conversation(*, conversation: Conversation, by=None, reason: str = "member") -> Conversation:
    conversation = lock_conversation(conversation_id=conversation.pk)
    if conversation.status == Status.OPEN:
        return conversation
    _set_status(conversation, Status.OPEN)
    record_activity(conversation=conversation, kind="reopened", actor=by, data={"reason": reason})
    return conversation


@transaction.atomic
def snooze_conversation(*, conversation: Conversation, until: datetime, by=None) -> Conversation:
    if until <= timezone.now():
        raise ValidationError({"until": "Snooze until a time in the future, e.g. 2026-01-31T09:00:00Z."})
    conversation = lock_conversation(conversation_id=conversation.pk)
    _set_status(conversation, Status.SNOOZED, snoozed_until=until)
    record_activity(conversation=conversation, kind="snoozed", actor=by, data={"until": until.isoformat()})
    return conversation


def reopen_on_inbound(*, conversation_id: int) -> bool:
    """The contact wrote: a resolved or snoozed conversation opens again. Runs in intake's transaction."""
    reopened = Conversation.objects.filter(pk=conversation_id, status__in=[Status.RESOLVED, Status.SNOOZED]).update(
        status=Status.OPEN, snoozed_until=None)
    if reopened:
        conversation = Conversation.objects.select_related("assignee").get(pk=conversation_id)
        record_activity(conversation=conversation, kind="reopened", data={"reason": "inbound"})
    return bool(reopened)


def wake_snoozed(*, now: datetime | None = None) -> int:
    """Reopen every conversation whose snooze has ended (each in its own short transaction)."""
    now = now or timezone.now()
    due = list(Conversation.objects.filter(status=Status.SNOOZED, snoozed_until__lte=now)
               .order_by("snoozed_until").values_list("pk", flat=True)[:1000])
    woken = 0
    for conversation_id in due:
        with transaction.atomic():
            conversation = lock_conversation(conversation_id=conversation_id)
            if conversation.status != Status.SNOOZED or conversation.snoozed_until > now:
                continue  # reopened or snoozed again meanwhile
            _set_status(conversation, Status.OPEN)
            record_activity(conversation=conversation, kind="reopened", data={"reason": "snooze_ended"})
            woken += 1
    return woken
