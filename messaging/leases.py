"""Claim-with-lease plus sweep: how a job takes its row, and how a lost job is found again.

Messages to send and webhook deliveries work the same way. The row is the
truth; its rq job only points at it. A job claims the row under SELECT … FOR
UPDATE SKIP LOCKED and stamps a lease before the slow part (a bridge call, an
HTTP POST) runs outside the transaction: a duplicate job walks away instead of
queueing behind the lock, and a killed worker's row is claimable again when
its lease ends. The every-minute sweep re-enqueues rows whose job is gone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from waplatform.queues import enqueue_many, get_queue

logger = logging.getLogger(__name__)

Row = TypeVar("Row", bound=models.Model)


def claim(
    claimable: models.QuerySet[Row],
    *,
    pk: int,
    lease_field: str,
    lease_seconds: float,
    take: Callable[[Row, datetime], list[str] | None],
) -> Row | None:
    """Row `pk` of `claimable`, locked and leased for one attempt, or None when there is nothing to do.

    `take(row, now)` runs under the row lock: it changes the row for the attempt
    and returns the fields it changed, or None to leave the row unclaimed (an
    early duplicate job, or a row it finished itself).
    """
    now = timezone.now()
    with transaction.atomic():
        row = claimable.select_for_update(skip_locked=True, of=("self",)).filter(pk=pk).first()
        if row is None:
            return None
        changed = take(row, now)
        if changed is None:
            return None
        setattr(row, lease_field, now + timedelta(seconds=lease_seconds))
        row.save(update_fields=[*changed, lease_field])
    return row


def requeue(*, job: str, queue: str, ids: list[int], due_now: models.QuerySet) -> int:
    """Enqueue `job` again for rows whose job is lost, as many as `queue` has room for.

    The rows of `due_now` among them get next_attempt_at = now first, so the
    next sweep leaves them alone while their jobs wait in the queue; a sweep
    that dies between the two steps leaves them due again a sweep later.
    """
    if not ids:
        return 0
    room = settings.QUEUE_MAX_WAITING - get_queue(queue).count
    if room <= 0:
        logger.warning("sweep: queue %s full, %d stuck jobs wait for the next sweep", queue, len(ids))
        return 0
    ids = ids[:room]
    now = timezone.now()
    # Not a row a job claimed since the caller looked: its lease (a later next_attempt_at) stands,
    # and the job enqueued here for it finds it not due and walks away.
    due_now.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), pk__in=ids) \
        .update(next_attempt_at=now)
    enqueue_many(job, [(pk,) for pk in ids], queue=queue)
    return len(ids)
