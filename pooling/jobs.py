"""rq entry points: take ids, re-read, do nothing when the work is done."""

import time

from pooling import health, optimizer, sessions
from pooling.selectors import LAST_HEALTH_CHECK_KEY
from waplatform.locks import run_single_flight
from waplatform.redis import get_redis


def provision_slot(slot_id: int) -> str:
    return health.provision_slot(slot_id=slot_id)


def run_host_health_checks(slot_ids: list[int]) -> list[str]:
    """On a bridge host's own queue: the health check of the slots whose processes it runs."""
    return health.run_health_checks(slot_ids=slot_ids, on_host=True).lines()


def stop_local_bridge(slot_id: int) -> str:
    return health.stop_local_bridge(slot_id=slot_id)


def start_session_on_slot(session_id: int) -> str:
    return sessions.start_on_slot(session_id=session_id)


def start_sessions_on_slot(slot_id: int, session_ids: list[int]) -> dict[str, int]:
    return sessions.start_many_on_slot(slot_id=slot_id, session_ids=session_ids)


def stop_session_on_slot(session_id: int, slot_id: int, logout: bool = False) -> str:
    return sessions.stop_on_slot(session_id=session_id, slot_id=slot_id, logout=logout)


def place_waiting_tenants(tier_id: int) -> int:
    return sessions.place_waiting_tenants(tier_id=tier_id)


def _periodic(name: str, work) -> list[str]:
    # Cron enqueues on the clock: a cycle that outlasts its interval would otherwise be
    # joined by the next one on another worker, both moving the same tenants (bench `capacity`).
    return run_single_flight(
        f"pool {name}", work, timeout=600, skipped=[f"skipped: the previous {name} is still running"]
    )


def run_health_checks() -> list[str]:
    def cycle():
        lines = health.run_health_checks().lines()
        # For the operations page's "last health-check run".
        get_redis().set(LAST_HEALTH_CHECK_KEY, time.time())
        return lines

    return _periodic("health check", cycle)


def optimize_pools() -> list[str]:
    return _periodic("optimisation", lambda: optimizer.optimize_pools().lines())


def cleanup_idle_sessions() -> list[str]:
    return optimizer.cleanup_idle_sessions()


def take_pool_snapshots() -> int:
    return len(optimizer.take_snapshots())
