"""One Redis client per address per process, built with the seed's client settings.

Three roles, each its own setting (docs/deployment.md, "Redis: three roles"); all
three default to REDIS_URL:
- queues (REDIS_QUEUES_URL): rq's queues, locks, the scheduler heartbeat, a tenant's
  send pause: what must be shared exactly once and survive a failover;
- cache (REDIS_CACHE_URL): API throttles, send pacing, counters, the agents' caches:
  losing it costs a recount or a recomputation, never a message;
- channels (REDIS_CHANNELS_URL): the channel layer (settings.CHANNEL_LAYERS) and the
  live inbox's connection leases, which belong to the same live connections.
"""

from functools import lru_cache

import redis
from django.conf import settings
from redis.sentinel import Sentinel

from waplatform.redis_urls import RedisAddress, parse_redis_url


def client_for_address(address: RedisAddress, **client_kwargs) -> redis.Redis:
    """A new client; through Sentinel it asks for the master on every new connection."""
    if not address.is_sentinel:
        return redis.Redis.from_url(address.url, **client_kwargs)
    sentinel = Sentinel(list(address.sentinels), sentinel_kwargs=address.sentinel_kwargs())
    return sentinel.master_for(address.service, **address.master_kwargs(), **client_kwargs)


@lru_cache(maxsize=8)
def _client_for(url: str) -> redis.Redis:
    address = parse_redis_url(url)
    kwargs = settings.REDIS_SENTINEL_CLIENT_KWARGS if address.is_sentinel else settings.REDIS_CLIENT_KWARGS
    return client_for_address(address, **kwargs)


def get_redis() -> redis.Redis:
    """The queues Redis."""
    return _client_for(settings.REDIS_QUEUES_URL)


def get_cache_redis() -> redis.Redis:
    return _client_for(settings.REDIS_CACHE_URL)


def get_channels_redis() -> redis.Redis:
    return _client_for(settings.REDIS_CHANNELS_URL)


def distinct_urls() -> dict[str, str]:
    """Each role's URL, the roles sharing one address folded into the first ("queues" first)."""
    urls: dict[str, str] = {}
    for role, url in (("queues", settings.REDIS_QUEUES_URL), ("channels", settings.REDIS_CHANNELS_URL),
                      ("cache", settings.REDIS_CACHE_URL)):
        if url not in urls.values():
            urls[role] = url
    return urls


@lru_cache(maxsize=8)
def probe_client(url: str) -> redis.Redis:
    """For probes and status pages: not the shared client, whose retries and 10 s connect
    timeout suit jobs, while a probe must answer within the load balancer's own timeout."""
    return client_for_address(parse_redis_url(url), socket_connect_timeout=2, socket_timeout=2)


def ping_all() -> dict[str, str | None]:
    """Each distinct role's Redis: None when it answers, else the error."""
    states = {}
    for role, url in distinct_urls().items():
        try:
            probe_client(url).ping()
            states[role] = None
        except redis.RedisError as exc:
            states[role] = f"{type(exc).__name__}: {exc}"
    return states


def require_redis() -> None:
    """Raise Redis's connection error now, before a change that would be left half-done without it.

    Services that write and then enqueue or publish over several transactions
    (draining a slot) call this first: refused before the first write is better
    than a slot left DRAINING with half its tenants moved.
    """
    get_redis().ping()
