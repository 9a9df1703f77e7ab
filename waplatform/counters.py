"""Cheap shared counters in Redis for facts any app may count (cache hits, ...).

Apps low in the dependency order cannot import the metrics module; they
count here, and /metrics exports the hash at scrape time. One HINCRBY each,
correct across every process.
"""

import logging

from redis.exceptions import RedisError

from waplatform.redis import get_cache_redis

KEY = "wap:counters"
logger = logging.getLogger(__name__)


def incr(name: str, **labels: str) -> None:
    field = name + "".join(f"|{k}={v}" for k, v in sorted(labels.items()))
    try:
        get_cache_redis().hincrby(KEY, field, 1)
    except RedisError:  # a lost count must never fail the work being counted
        logger.debug("counter %s not recorded", field)


def read_all() -> list[tuple[str, dict[str, str], int]]:
    rows = []
    for raw_field, value in get_cache_redis().hgetall(KEY).items():
        name, *pairs = raw_field.decode().split("|")
        rows.append((name, dict(pair.split("=", 1) for pair in pairs), int(value)))
    return rows
