"""Platform-level periodic jobs."""

from waplatform import heartbeat as _heartbeat
from waplatform import outbox, redis_epoch
from waplatform.redis import get_redis


def heartbeat() -> float:
    """Proves the scheduler and the maintenance workers are alive (read by /readyz)."""
    return _heartbeat.beat(get_redis())


def relay_events() -> str:
    """The outbox relay: events whose fast path after commit did not reach every subscriber."""
    return str(outbox.relay())


def purge_delivered_events() -> int:
    return outbox.purge_delivered()


def check_redis_epoch() -> bool:
    """Every REDIS_EPOCH_CHECK_SECONDS: a Redis that lost its data has its jobs re-enqueued from the database."""
    return redis_epoch.check(get_redis())
