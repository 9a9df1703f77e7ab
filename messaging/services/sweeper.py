"""The every-minute sweep (messaging.jobs.sweep): finds the work whose job was lost.

Each re-enqueued row's next_attempt_at moves to now (messaging.leases.requeue),
so a backlog that has not reached its job yet is not enqueued again by the next sweep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from messaging import leases, webhooks_out
from messaging.models import Message, PendingStatus
from messaging.services.statuses import apply_pending_statuses, fail_message
from tenants.models import Tenant


@dataclass
class SweepReport:
    messages_requeued: int = 0
    messages_expired: int = 0
    deliveries_requeued: int = 0
    pending_applied: int = 0
    pending_expired: int = 0

    def lines(self) -> list[str]:
        return [f"{k}={v}" for k, v in vars(self).items()]


def sweep_messages(*, report: SweepReport) -> None:
    """Re-enqueue messages whose job is lost: queued past due, or sending past their lease; fail expired ones."""
    now = timezone.now()
    stuck_before = now - timedelta(seconds=settings.SWEEP_STUCK_AFTER_SECONDS)
    expired_before = now - timedelta(seconds=settings.MESSAGE_EXPIRE_AFTER_SECONDS)
    for message in Message.objects.filter(status=Message.Status.QUEUED, accepted_at__lt=expired_before)[
        : settings.SWEEP_BATCH_SIZE
    ]:
        fail_message(message=message, code="expired", reason="Not sent within MESSAGE_EXPIRE_AFTER_SECONDS.")
        report.messages_expired += 1
    stuck = (
        # A suspended tenant's messages wait for its reactivation, not for the sweep.
        Message.objects.filter(direction=Message.Direction.OUT, tenant__status=Tenant.Status.ACTIVE)
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
        report.messages_requeued += leases.requeue(
            job="messaging.jobs.deliver_message", queue=queue, ids=ids,
            due_now=Message.objects.filter(status=Message.Status.QUEUED))


def sweep_pending_statuses(*, report: SweepReport) -> None:
    cutoff = timezone.now() - timedelta(seconds=settings.PENDING_STATUS_TTL_SECONDS)
    report.pending_expired = PendingStatus.objects.filter(created_at__lt=cutoff).delete()[0]
    known = PendingStatus.objects.filter(
        Exists(Message.objects.filter(tenant_id=OuterRef("tenant_id"),
                                      provider_message_id=OuterRef("provider_message_id")))
    ).values_list("tenant_id", "provider_message_id")[: settings.SWEEP_BATCH_SIZE]
    for tenant_id, provider_id in set(known):
        report.pending_applied += apply_pending_statuses(tenant_id=tenant_id, provider_message_ids=[provider_id])


def sweep() -> SweepReport:
    """Lost message jobs, due webhook deliveries, old pending statuses."""
    report = SweepReport()
    sweep_messages(report=report)
    report.deliveries_requeued = webhooks_out.requeue_due_deliveries()
    sweep_pending_statuses(report=report)
    return report
