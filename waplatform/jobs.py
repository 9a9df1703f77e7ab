"""Platform-level periodic jobs."""

from waplatform import heartbeat as _heartbeat
from waplatform.redis import get_redis


def heartbeat() -> float:
    """Proves the scheduler and the maintenance workers are alive (read by /readyz)."""
    return _heartbeat.beat(get_redis())
