"""Enqueueing: a cap per queue, and enqueue only after the database commits.

Jobs take ids, never model instances: the worker re-reads the row, so a job
that runs late (or twice) sees the truth and can do nothing.
"""

import json
import logging
import os
import threading
import uuid
from datetime import timedelta
from typing import Any

import django_rq
from django.conf import settings
from django.db import transaction
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job, JobStatus

from waplatform.redis import get_redis

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


_queues: dict[tuple, Any] = {}
_queues_lock = threading.Lock()


def get_queue(name: str):
    """The queue, one per process and configuration.

    django_rq.get_queue builds a new Redis client, with a pool of its own, on
    every call: each enqueue opened a TCP connection and ran redis-py's
    handshake (which reads the package's metadata from disk), 10-70 ms of a
    reply's path under load (bench agents --profile). Keyed by the settings
    too, so a test that points RQ_QUEUES elsewhere gets a queue there; redis-py
    pools reset themselves in a forked child.
    """
    if name.startswith(HOST_QUEUE_PREFIX) and len(name) > len(HOST_QUEUE_PREFIX):
        # Any host enqueues onto any other host's queue, so each cannot be in every host's
        # RQ_QUEUES: it lives on the queues Redis, configured as `maintenance` is.
        # A plain rq Queue: django-rq's looks its options up in RQ_QUEUES by name.
        base = get_queue("maintenance")
        return Queue(name, connection=base.connection, default_timeout=base._default_timeout,
                     serializer=base.serializer, job_class=base.job_class, is_async=base._is_async)
    if name not in settings.QUEUE_NAMES:
        raise ValueError(f"Unknown queue {name!r}; expected one of {settings.QUEUE_NAMES}")
    key = (name, os.getpid(), json.dumps(settings.RQ_QUEUES.get(name), sort_keys=True, default=str))
    queue = _queues.get(key)
    if queue is None:
        with _queues_lock:
            queue = _queues.setdefault(key, django_rq.get_queue(name))
    return queue


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


def enqueue_once_on_commit(job: str, *args: Any, queue: str, flag: str, flag_ttl: float) -> None:
    """Like enqueue_on_commit, but only when no job holding Redis key `flag` is already waiting.

    For jobs that take all the due work of one owner (a tenant's sends, the outbox
    relay): a thousand commits make one job, not a thousand. The job deletes
    `flag` before it looks for work, so whatever commits after that look sets the
    flag again and gets a job of its own. `flag_ttl` bounds how long a lost job
    (a Redis failover, a killed worker) can stop the next one from being enqueued;
    the owner's sweeper covers that gap.
    """
    path = _job_path(job)

    def _enqueue() -> None:
        redis = get_redis()
        try:
            holder = redis.get(flag)
            if holder is not None and _still_waiting(holder.decode(), queue):
                return
            job_id = uuid.uuid4().hex
            # The flag names its job, so that a flag whose job is gone (a Redis that came back
            # from its AOF with the SET but not the job or the job's DEL) does not hold every
            # later send back until it expires. Two committers that both find it stale each
            # enqueue one: harmless, the job claims rows atomically.
            if holder is None and not redis.set(flag, job_id, nx=True, px=max(1, int(flag_ttl * 1000))):
                return
            if holder is not None:
                redis.set(flag, job_id, px=max(1, int(flag_ttl * 1000)))
            enqueue(path, *args, queue=queue, job_id=job_id)
        except QueueFull:
            redis.delete(flag)
            logger.warning("queue %s full: %s%r left for the sweeper", queue, path, args)
        except RedisError:
            logger.exception("could not enqueue %s%r on %s; left for the sweeper", path, args, queue)

    transaction.on_commit(_enqueue, robust=False)


def _still_waiting(job_id: str, queue: str) -> bool:
    """Whether the job a flag names is still to run: scheduled, deferred, or queued and on its queue."""
    rq_queue = get_queue(queue)
    # One round trip on every commit that sends (not rq's Job.fetch: the whole hash, deserialised).
    # A job whose hash says queued can be on no queue: a Redis back from its AOF without the
    # LPUSH's last second, or a worker's dequeue cut off by the outage (rq's intermediate queue).
    # Nothing would run it; the queue is short (one job per tenant with due sends), so LPOS is cheap.
    pipe = rq_queue.connection.pipeline(transaction=False)
    pipe.hget(Job.key_for(job_id), "status")
    pipe.lpos(rq_queue.key, job_id)
    status, position = pipe.execute()
    status = status.decode() if isinstance(status, bytes) else status
    if status == JobStatus.QUEUED:
        return position is not None
    return status in (JobStatus.SCHEDULED, JobStatus.DEFERRED)


def take_flag(flag: str) -> bool:
    """Delete `flag` (see enqueue_once_on_commit); True when it was set."""
    return bool(get_redis().delete(flag))
