"""One Redis client per URL per process, built with the seed's client settings."""

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=8)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, **settings.REDIS_CLIENT_KWARGS)


def get_redis() -> redis.Redis:
    return _client_for(settings.REDIS_URL)


def require_redis() -> None:
    """Raise Redis's connection error now, before a change that would be left half-done without it.

    Services that write and then enqueue or publish over several transactions
    (draining a slot) call this first: refused before the first write is better
    than a slot left DRAINING with half its tenants moved.
    """
    get_redis().ping()
