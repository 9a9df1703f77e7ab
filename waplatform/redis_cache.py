"""The connection pool Django's Redis cache uses (settings.CACHES), Sentinel URLs included.

Django's RedisCache builds its pools with `pool_class.from_url(LOCATION, **OPTIONS)`; this
class answers that call for every address waplatform.redis_urls parses.
"""

import redis
from redis.sentinel import Sentinel, SentinelConnectionPool

from waplatform.redis_urls import SentinelFollowingConnection, parse_redis_url


class ConnectionPool:
    @classmethod
    def from_url(cls, url: str, **options) -> redis.ConnectionPool:
        address = parse_redis_url(url)
        if not address.is_sentinel:
            return redis.ConnectionPool.from_url(url, **options)
        sentinel = Sentinel(list(address.sentinels), sentinel_kwargs=address.sentinel_kwargs())
        return SentinelConnectionPool(address.service, sentinel, is_master=True,
                                      connection_class=SentinelFollowingConnection,
                                      **address.master_kwargs(), **options)
