"""Whether the queues Redis still holds what the platform put in it.

A Redis that restarted without its data (no AOF, a new host, FLUSHALL) has
forgotten every queued and scheduled job, while the database still holds the
work they pointed at. A marker key, set once per Redis "epoch" with the time it
was set, says which: when it is missing, everything that lived only in Redis
is gone. The key, not Redis's run_id: a restart that reloads its AOF changes
the run_id but loses nothing, and FLUSHALL loses everything with the same
run_id.

Checked every REDIS_EPOCH_CHECK_SECONDS by a cron job
(waplatform.jobs.check_redis_epoch); on a new epoch it enqueues the jobs of
settings.REDIS_LOSS_RECOVERY_JOBS, which re-enqueue from the database.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from redis import Redis

from waplatform.queues import enqueue

logger = logging.getLogger(__name__)

KEY = "wap:redis-epoch"


def started_at(client: Redis) -> float | None:
    """When the current epoch began (time.time()), or None when this Redis has not been seen yet."""
    value = client.get(KEY)
    return float(value) if value else None


def check(client: Redis) -> bool:
    """Start a new epoch if Redis lost the marker, after enqueueing the recovery jobs; True if it did.

    The marker is set after the jobs are enqueued: a check that dies half-way is
    repeated by the next one. Two checks that race both enqueue; the jobs are
    idempotent re-reads of the database.
    """
    if started_at(client) is not None:
        return False
    logger.warning("Redis holds no epoch marker (restarted empty, or flushed): re-enqueueing from the database")
    for job in settings.REDIS_LOSS_RECOVERY_JOBS:
        enqueue(job, queue="maintenance")
    client.set(KEY, time.time(), nx=True)
    return True
