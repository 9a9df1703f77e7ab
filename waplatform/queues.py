"""Enqueueing: a cap per queue, and enqueue only after the database commits.

Jobs take ids, never model instances: the worker re-reads the row, so a job
that runs late (or twice) sees the truth and can do nothing.
"""

import logging
from typing import Any, Callable

import django_rq
from django.conf import settings
from django.db import transaction

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


def get_queue(name: str):
    if name not in settings.QUEUE_NAMES:
        raise ValueError(f"Unknown queue {name!r}; expected one of {settings.QUEUE_NAMES}")
    return django_rq.get_queue(name)


def ensure_capacity(queue_name: str) -> None:
    """Refuse early, before any row is written, when the queue is at its cap."""
    limit = settings.QUEUE_MAX_WAITING
    waiting = get_queue(queue_name).count
    if waiting >= limit:
        raise QueueFull(queue_name, waiting, limit)


def enqueue(func: Callable | str, *args: Any, queue: str, **job_options: Any):
    """Enqueue now, refusing with QueueFull past the queue's cap."""
    ensure_capacity(queue)
    return get_queue(queue).enqueue(func, *args, **job_options)


def enqueue_on_commit(func: Callable | str, *args: Any, queue: str, **job_options: Any) -> None:
    """Enqueue once the current transaction commits (at once when there is none).

    A refusal after commit cannot reach the caller any more; it is logged and the
    row stays in the database for the periodic sweepers to pick up again.
    """

    def _enqueue() -> None:
        try:
            enqueue(func, *args, queue=queue, **job_options)
        except QueueFull:
            logger.warning("queue %s full: %s%r left for the sweeper", queue, getattr(func, "__name__", func), args)

    transaction.on_commit(_enqueue, robust=False)
