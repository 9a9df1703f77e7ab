"""Every API error is JSON with a stable `code` and a human `detail`."""

import logging
import math

from django.db import OperationalError
from django.http import Http404
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.views import set_rollback

from waplatform.queues import QueueFull

logger = logging.getLogger(__name__)

# While Redis restarts (the launcher brings it back within seconds) or SQLite's
# write lock is held past its busy timeout, the request may well succeed on a
# retry: say so with 503 + Retry-After instead of an HTML 500.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5


def _temporarily_unavailable(exc) -> tuple[str, str] | None:
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return "redis_unavailable", "A backing service (Redis) is unavailable; retry shortly."
    if isinstance(exc, OperationalError) and "database is locked" in str(exc):
        return "database_busy", "The database is busy; retry shortly."
    return None


def _first_code(codes) -> str:
    if isinstance(codes, str):
        return codes
    if isinstance(codes, dict):
        for value in codes.values():
            return _first_code(value)
    if isinstance(codes, list) and codes:
        return _first_code(codes[0])
    return "error"


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            message = _first_message(value)
            return message if field == "non_field_errors" else f"{field}: {message}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)


def exception_handler(exc, context):
    if isinstance(exc, QueueFull):
        response = Response(
            {"code": "queue_full", "detail": str(exc)},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(exc.retry_after)},
        )
        return response
    unavailable = _temporarily_unavailable(exc)
    if unavailable:
        logger.warning("API answered 503: %s: %s", type(exc).__name__, exc)
        code, detail = unavailable
        set_rollback()  # what the request wrote so far must not commit half-done
        return Response(
            {"code": code, "detail": detail},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {
            "code": "invalid",
            "detail": _first_message(exc.detail),
            "errors": exc.detail,
        }
    elif isinstance(exc, exceptions.APIException):
        response.data = {"code": _first_code(exc.get_codes()), "detail": _first_message(exc.detail)}
        if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            response["Retry-After"] = str(math.ceil(exc.wait))
    return response
