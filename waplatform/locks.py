"""Single-flight work across every process: a Redis lock taken without waiting."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from redis.exceptions import LockError

from waplatform.redis import get_redis


@contextmanager
def single_flight(name: str, *, timeout: float) -> Iterator[bool]:
    """Yields True to the one holder of `name`, False to anyone arriving while it runs.

    `timeout` bounds how long a crashed holder can block the others.
    """
    lock = get_redis().lock(f"wap:single-flight:{name}", timeout=timeout, blocking=False)
    acquired = lock.acquire()
    try:
        yield acquired
    finally:
        if acquired:
            try:
                lock.release()
            except LockError:  # expired while running: someone else may hold it now
                pass


def run_single_flight(name: str, work: Callable, *, timeout: float, skipped):
    with single_flight(name, timeout=timeout) as acquired:
        return work() if acquired else skipped
