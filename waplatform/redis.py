"""One Redis client per URL per process, built with the seed's client settings."""

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=8)
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, **settings.REDIS_CLIENT_KWARGS)


def get_redis() -> redis.Redis:
    return _client_for(settings.REDIS_URL)
