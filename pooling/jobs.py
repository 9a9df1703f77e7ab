"""rq entry points: take ids, re-read, do nothing when the work is done."""

import time

from pooling import allocation, health, optimizer, sessions
from redis.exceptions import LockError

from waplatform.redis import get_redis


def provision_slot(slot_id: int) -> str:
    return health.provision_slot(slot_id=slot_id)


def start_session_on_slot(session_id: int) -> str:
    return sessions.start_on_slot(session_id=session_id)


def stop_session_on_slot(session_id: int, slot_id: int, logout: bool = False) -> str:
    return sessions.stop_on_slot(session_id=session_id, slot_id=slot_id, logout=logout)


def place_waiting_tenants(tier_id: int) -> int:
    return allocation.place_waiting_tenants(tier_id=tier_id)


LAST_HEALTH_CHECK_KEY = "wap:pool:last_health_check"


def _single_flight(name: str, work, timeout: int = 600):
    """Run `work` unless the same periodic job is still running elsewhere.

    Cron enqueues on the clock: a cycle that outlasts its interval would
    otherwise be joined by the next one on another worker, both moving the
    same tenants, and the queue would only grow (bench `capacity`).
    """
    lock = get_redis().lock(f"wap:pool:running:{name}", timeout=timeout, blocking=False)
    if not lock.acquire():
        return [f"skipped: the previous {name} is still running"]
    try:
        return work()
    finally:
        try:
            lock.release()
        except LockError:  # expired while running: a later cycle may already hold it
            pass


def run_health_checks() -> list[str]:
    def cycle():
        lines = health.run_health_checks().lines()
        # For the operations page's "last health-check run".
        get_redis().set(LAST_HEALTH_CHECK_KEY, time.time())
        return lines

    return _single_flight("health check", cycle)


def optimize_pools() -> list[str]:
    return _single_flight("optimisation", lambda: optimizer.optimize_pools().lines())


def cleanup_idle_sessions() -> list[str]:
    return optimizer.cleanup_idle_sessions()


def take_pool_snapshots() -> int:
    return len(optimizer.take_snapshots())
