"""Liveness and readiness probes for load balancers and the launcher."""

import redis
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET


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


def _check_redis() -> str | None:
    # Not the shared client: its retries and 10 s connect timeout suit jobs,
    # while a probe must answer within the load balancer's own timeout.
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        client.close()
    return None


@require_GET
def readyz(request):
    checks = {"database": _check_database(), "redis": _check_redis()}
    ready = all(error is None for error in checks.values())
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": {name: ("ok" if error is None else error) for name, error in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)
