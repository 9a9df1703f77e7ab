"""Platform-level periodic jobs."""

import time

from waplatform.redis import get_redis

HEARTBEAT_KEY = "wap:heartbeat"


def heartbeat() -> float:
    """Proves the scheduler and the maintenance workers are alive (shown on /readyz)."""
    now = time.time()
    get_redis().set(HEARTBEAT_KEY, now)
    return now
