"""Status changes of outbound messages: sent, acks from the bridges, failed.

Status only moves up Message.RANK, applied with a conditional UPDATE, so two
acks racing each other can never move a message backwards.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Case, CharField, DateTimeField, Value, When
from django.utils import timezone

from messaging.models import Message, PendingStatus
from messaging.services.payloads import publish_loaded_message, publish_loaded_messages, publish_message

STATUS_TIME_FIELD = {
    Message.Status.SENT: "sent_at",
    Message.Status.DELIVERED: "delivered_at",
    Message.Status.READ: "read_at",
    Message.Status.FAILED: "failed_at",
}


def record_sent(*, message_id: int, provider_message_id: str, slot_id: int | None = None) -> bool:
    return bool(record_sent_many(sent=[(message_id, provider_message_id, timezone.now())], slot_id=slot_id))


@transaction.atomic
def record_sent_many(*, sent: list[tuple[int, str, datetime]], slot_id: int | None = None) -> list[int]:
    """Record (message id, WhatsApp id, when the bridge took it) as `sent` in one transaction;
    returns the ids recorded.

    A message already past `sent` (an ack that raced us, a `failed`) is left alone.
    One UPDATE for the whole batch (a batch's send job records 25 at a time), then the
    read its events need anyway tells which rows it moved: those now carrying this call's
    WhatsApp id and time. Nothing else can change them before our commit: the UPDATE holds
    their locks (PostgreSQL) or the database's write lock (SQLite).
    """
    if not sent:
        return []
    taken = {message_id: (provider_message_id, sent_at) for message_id, provider_message_id, sent_at in sent}
    Message.objects.filter(pk__in=taken, status_rank__lt=Message.RANK[Message.Status.SENT]).update(
        status=Message.Status.SENT,
        status_rank=Message.RANK[Message.Status.SENT],
        provider_message_id=_per_row(taken, 0, CharField()),
        sent_at=_per_row(taken, 1, DateTimeField()),
        lease_expires_at=None,
        next_attempt_at=None,
        paced_until=None,
        error_code="",
        error_reason="",
        sent_via_slot_id=slot_id,
    )
    recorded = [
        message for message in Message.objects.select_related("contact", "media").filter(pk__in=taken).order_by("pk")
        if message.status == Message.Status.SENT and (message.provider_message_id, message.sent_at) == taken[message.pk]
    ]
    publish_loaded_messages(event_type="message.sent", messages=recorded)
    return [message.pk for message in recorded]


def _per_row(values: dict[int, tuple], index: int, output_field) -> Case:
    return Case(*[When(pk=pk, then=Value(value[index], output_field=output_field)) for pk, value in values.items()],
                output_field=output_field)


def fail_locked(*, message: Message, code: str, reason: str) -> None:
    """Must run inside a transaction; `failed` is terminal, so a message already past it is left alone."""
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
        publish_message(event_type="message.failed", message_id=message.pk)


@transaction.atomic
def fail_message(*, message: Message, code: str, reason: str) -> None:
    fail_locked(message=message, code=code, reason=reason)


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
        publish_loaded_message(event_type="message.failed" if status == Message.Status.FAILED else "message.status",
                               message=mine.select_related("contact", "media").order_by("pk").first())
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
