"""One active scheduler among several: a lease in Redis (docs/deployment.md, "The scheduler lease").

The lease is a key set with NX and a TTL (SCHEDULER_LEASE_SECONDS) holding the
holder's token; the holder renews it every third of the TTL with a script that
extends it only while it still holds the holder's token. A standby tries to
take it at the same pace, so it takes over at most TTL + TTL/3 after the
holder stopped renewing (killed, frozen, cut off from Redis).

The holder believes it holds the lease only until `renewed_at + TTL` on its
own monotonic clock, measured from before the renewal was sent: Redis starts
the TTL when the command arrives, later, so the key outlives that belief and
a holder never enqueues after a standby could have taken over (short of a
freeze between the check and the enqueue itself, which the single_flight
locks of the overlapping jobs cover).
"""

from __future__ import annotations

import time
import uuid

from redis import Redis

KEY = "wap:scheduler:lease"

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class Lease:
    def __init__(self, connection: Redis, *, seconds: float, identity: str = "") -> None:
        self.connection = connection
        self.ttl_ms = max(1, int(seconds * 1000))
        self.token = identity or uuid.uuid4().hex
        self._valid_until = 0.0  # monotonic; 0: not held

    @property
    def renew_every(self) -> float:
        return self.ttl_ms / 3000

    def held(self) -> bool:
        return time.monotonic() < self._valid_until

    def try_acquire(self) -> bool:
        """Take the lease if it is free, or renew it if it is ours. False: someone else holds it."""
        sent_at = time.monotonic()
        if self.connection.set(KEY, self.token, nx=True, px=self.ttl_ms) or \
                self.connection.eval(_RENEW, 1, KEY, self.token, self.ttl_ms):
            self._valid_until = sent_at + self.ttl_ms / 1000
            return True
        self._valid_until = 0.0
        return False

    def release(self) -> None:
        """On a clean stop: the standby need not wait out the TTL."""
        self._valid_until = 0.0
        self.connection.eval(_RELEASE, 1, KEY, self.token)


def holder(connection: Redis) -> str | None:
    value = connection.get(KEY)
    return value.decode() if isinstance(value, bytes) else value
