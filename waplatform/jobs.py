"""Platform-level periodic jobs."""

import time

from waplatform import outbox
from waplatform.redis import get_redis

HEARTBEAT_KEY = "wap:heartbeat"


def heartbeat() -> float:
    """Proves the scheduler and the maintenance workers are alive (shown on /readyz)."""
    now = time.time()
    get_redis().set(HEARTBEAT_KEY, now)
    return now


def relay_events() -> str:
    """The outbox relay: events whose fast path after commit did not reach every subscriber."""
    return str(outbox.relay())


def purge_delivered_events() -> int:
    return outbox.purge_delivered()
