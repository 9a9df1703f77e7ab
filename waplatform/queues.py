"""Enqueueing: a cap per queue, and enqueue only after the database commits.

Jobs take ids, never model instances: the worker re-reads the row, so a job
that runs late (or twice) sees the truth and can do nothing.
"""

import logging
from datetime import timedelta
from typing import Any

import django_rq
from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError
from rq import Queue

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """A queue already holds its maximum of waiting jobs; the caller should retry later."""

    def __init__(self, queue_name: str, waiting: int, limit: int):
        self.queue_name = queue_name
        self.waiting = waiting
        self.limit = limit
        self.retry_after = settings.QUEUE_RETRY_AFTER_SECONDS
        super().__init__(
            f"Queue '{queue_name}' is full ({waiting} waiting, limit {limit}); retry in {self.retry_after} s."
        )


# A host's own queue (`bridges@<WAP_HOST>`), served by the bridges role of that host only:
# work that must run where a bridge process lives (pooling.hosts, docs/deployment.md).
HOST_QUEUE_PREFIX = "bridges@"


def host_queue_name(host: str) -> str:
    return f"{HOST_QUEUE_PREFIX}{host}"


def get_queue(name: str):
    if name.startswith(HOST_QUEUE_PREFIX) and len(name) > len(HOST_QUEUE_PREFIX):
        # Any host enqueues onto any other host's queue, so each cannot be in every host's
        # RQ_QUEUES: it lives on the queues Redis, configured as `maintenance` is.
        # A plain rq Queue: django-rq's looks its options up in RQ_QUEUES by name.
        base = django_rq.get_queue("maintenance")
        return Queue(name, connection=base.connection, default_timeout=base._default_timeout,
                     serializer=base.serializer, job_class=base.job_class, is_async=base._is_async)
    if name not in settings.QUEUE_NAMES:
        raise ValueError(f"Unknown queue {name!r}; expected one of {settings.QUEUE_NAMES}")
    return django_rq.get_queue(name)


def ensure_capacity(queue_name: str) -> None:
    """Refuse early, before any row is written, when the queue is at its cap."""
    limit = settings.QUEUE_MAX_WAITING
    waiting = get_queue(queue_name).count
    if waiting >= limit:
        raise QueueFull(queue_name, waiting, limit)


def enqueue(job: str, *args: Any, queue: str, **job_options: Any):
    """Enqueue now, refusing with QueueFull past the queue's cap."""
    ensure_capacity(queue)
    return get_queue(queue).enqueue(_job_path(job), *args, **job_options)


def enqueue_on_commit(job: str, *args: Any, queue: str, delay: float = 0, **job_options: Any) -> None:
    """Enqueue `job` (a dotted path) once the current transaction commits; at once outside one.

    The rows the job works on are already committed and every job has a sweeper
    that re-finds due rows, so a refusal after commit (queue at its cap, Redis
    unreachable) is logged and left to that sweeper instead of failing the
    caller whose change is already durable. `delay` > 0 hands the job to rq's
    scheduler (enqueue_in) instead of the queue.
    """
    path = _job_path(job)

    def _enqueue() -> None:
        try:
            if delay > 0:
                get_queue(queue).enqueue_in(timedelta(seconds=delay), path, *args, **job_options)
            else:
                enqueue(path, *args, queue=queue, **job_options)
        except QueueFull:
            logger.warning("queue %s full: %s%r left for the sweeper", queue, path, args)
        except RedisError:
            logger.exception("could not enqueue %s%r on %s; left for the sweeper", path, args, queue)

    transaction.on_commit(_enqueue, robust=False)


def _job_path(job: str) -> str:
    # Jobs are named, never imported, by the code that enqueues them: services
    # sit below jobs (jobs call services), so an import would point upwards.
    if not isinstance(job, str) or ".jobs." not in job:
        raise TypeError(f"enqueue a job by its dotted path ('app.jobs.name'), not {job!r}")
    return job


def enqueue_many(job: str, args_list: list[tuple], *, queue: str, job_ids: list[str] | None = None) -> None:
    """Enqueue one job per argument tuple in one round trip (sweepers re-enqueueing due rows).

    `job_ids`, one per tuple, when the job has a stable id (its first enqueue used it too).
    """
    if args_list:
        rq_queue = get_queue(queue)
        ids = job_ids or [None] * len(args_list)
        rq_queue.enqueue_many([rq_queue.prepare_data(_job_path(job), args, job_id=job_id)
                               for args, job_id in zip(args_list, ids)])
