"""Recovery in seconds, not at the next sweep (docs/operations.md, "Recovery in seconds").

The sweeper (messaging.services.sweeper) finds lost work by age: a `sending`
message once its 90 s lease ran out, a `queued` one SWEEP_STUCK_AFTER_SECONDS
past due. Two causes of loss are known the moment they happen, and these
functions act on them at once:

- a send worker died mid-send: the lease names its owner process
  (waplatform.lease_owners); a lease whose owner is dead ends now and the
  message's job is enqueued again. The bridge may have accepted the message
  just before the worker died, the one window in which it is sent twice: the
  same window the lease's end always had, only reached sooner;
- Redis lost its data (waplatform.redis_epoch): every `queued` message and due
  webhook delivery gets its job again, the paced or backed-off ones at their
  due time, rather than ~1-2 min later by age.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from messaging import leases, webhooks_out
from messaging.models import Message
from tenants.models import Tenant
from waplatform import lease_owners, redis_epoch
from waplatform.queues import get_queue
from waplatform.redis import get_redis

DELIVER = "messaging.jobs.deliver_message"


def reclaim_orphaned_sends() -> int:
    """End the lease of `sending` messages whose owner process is dead and enqueue them again."""
    now = timezone.now()
    leased = list(
        Message.objects.filter(direction=Message.Direction.OUT, status=Message.Status.SENDING,
                               lease_expires_at__gte=now)
        .exclude(lease_owner="")
        .values_list("pk", "lease_owner", "lease_expires_at", "tenant__tier__send_queue")
        .order_by("pk")[: settings.SWEEP_BATCH_SIZE]
    )
    if not leased:
        return 0
    redis = get_redis()
    epoch = redis_epoch.started_at(redis)
    lease = timedelta(seconds=settings.MESSAGE_SEND_LEASE_SECONDS)
    verdicts: dict[tuple[str, bool], bool] = {}
    by_queue: dict[str, list[int]] = {}
    for pk, owner, expires_at, queue in leased:
        leased_at = expires_at - lease
        key = (owner, epoch is not None and leased_at.timestamp() >= epoch)
        if key not in verdicts:
            verdicts[key] = lease_owners.owner_is_dead(owner, leased_at=leased_at, redis=redis,
                                                       epoch_started_at=epoch)
        # Conditional on the same owner: a job that took the message over since is left alone.
        if verdicts[key] and Message.objects.filter(pk=pk, status=Message.Status.SENDING,
                                                      lease_owner=owner).update(lease_expires_at=now):
            by_queue.setdefault(queue, []).append(pk)
    return sum(leases.requeue(job=DELIVER, queue=queue, ids=ids, due_now=Message.objects.none())
               for queue, ids in by_queue.items())


@dataclass
class LostJobsReport:
    messages_now: int = 0
    messages_later: int = 0
    deliveries: int = 0

    def lines(self) -> list[str]:
        return [f"{k}={v}" for k, v in vars(self).items()]


def requeue_lost_jobs() -> LostJobsReport:
    """After Redis lost its data: a job again for every queued message and every due webhook delivery."""
    report = LostJobsReport()
    now = timezone.now()
    queued = (Message.objects.filter(direction=Message.Direction.OUT, status=Message.Status.QUEUED,
                                     tenant__status=Tenant.Status.ACTIVE)
              .select_related("tenant__tier").order_by("pk"))
    due: dict[str, list[int]] = {}
    for message in queued.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)).only(
            "pk", "tenant__tier__send_queue")[: settings.SWEEP_BATCH_SIZE]:
        due.setdefault(message.tenant.tier.send_queue, []).append(message.pk)
    for queue, ids in due.items():
        report.messages_now += leases.requeue(job=DELIVER, queue=queue, ids=ids,
                                              due_now=Message.objects.filter(status=Message.Status.QUEUED))
    # Paced and backed-off messages keep their time: a job now would only be an early duplicate.
    for message in queued.filter(next_attempt_at__gt=now).only(
            "pk", "next_attempt_at", "tenant__tier__send_queue")[: settings.SWEEP_BATCH_SIZE]:
        get_queue(message.tenant.tier.send_queue).enqueue_at(message.next_attempt_at, DELIVER, message.pk)
        report.messages_later += 1
    report.deliveries = webhooks_out.requeue_deliveries_due_by(now)
    return report

