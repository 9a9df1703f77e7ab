"""The scheduler's heartbeat: a timestamp in Redis written by a cron job, read by /readyz.

The job runs on the `maintenance` queue, so a fresh beat proves both that the
scheduler enqueues and that a maintenance worker runs what it enqueues.
"""

from __future__ import annotations

import time

from redis import Redis

KEY = "wap:heartbeat"
INTERVAL_SECONDS = 30


def beat(client: Redis) -> float:
    now = time.time()
    client.set(KEY, now)
    return now


def age(client: Redis) -> float | None:
    """Seconds since the last beat; None when no scheduler ever ran against this Redis."""
    value = client.get(KEY)
    return max(0.0, time.time() - float(value)) if value else None
