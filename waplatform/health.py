"""Liveness and readiness probes for load balancers and the launcher."""

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

from waplatform import heartbeat
from waplatform.redis import ping_all, probe_client


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return f"{type(exc).__name__}: {exc}"
    return None


def _check_scheduler(client: redis.Redis) -> tuple[bool, str | None]:
    """(seen, error). A heartbeat never written means no scheduler has run against this
    Redis (tests, a lone `manage.py runserver`): not checked, so those stay ready. Once one
    has run, a heartbeat older than SCHEDULER_HEARTBEAT_STALE_SECONDS means periodic work
    (health checks, failover, sweepers) has stopped, and that is not ready."""
    try:
        age = heartbeat.age(client)
    except redis.RedisError as exc:
        return True, f"{type(exc).__name__}: {exc}"
    if age is None:
        return False, None
    if age > settings.SCHEDULER_HEARTBEAT_STALE_SECONDS:
        return True, (
            f"no heartbeat for {age:.0f} s (limit {settings.SCHEDULER_HEARTBEAT_STALE_SECONDS:.0f} s): "
            "is the scheduler running, and a maintenance worker?"
        )
    return True, None


@require_GET
def readyz(request):
    checks = {"database": _check_database()}
    # One check per distinct Redis address: "redis" is the queues Redis, the others appear
    # only when REDIS_CHANNELS_URL / REDIS_CACHE_URL name another server.
    for role, error in ping_all().items():
        checks["redis" if role == "queues" else f"redis_{role}"] = error
    if checks["redis"] is None:
        seen, error = _check_scheduler(probe_client(settings.REDIS_QUEUES_URL))
        if seen:
            checks["scheduler"] = error
    ready = all(error is None for error in checks.values())
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": {name: ("ok" if error is None else error) for name, error in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)
