"""Every API error is JSON with a stable `code` and a human `detail`.

Three layers, because errors arise at three depths: DRF views call
`exception_handler`; anything that escapes a view (the bridge intake is plain
Django) reaches `server_error` / `bad_request` (urls.py's handler500 /
handler400); and `JsonErrorsMiddleware` turns whatever is left under /api/,
/hooks/ and /inbox/api/ (the resolver's 404, a 405 from require_http_methods, a trailing-slash
redirect) into the same shape. The admin and the inbox keep Django's HTML pages.
"""

import logging
import math
import sys
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponsePermanentRedirect, JsonResponse
from django.views import defaults
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


# PostgreSQL SQLSTATEs that mean "the server is (briefly) not there": connection
# exceptions (08xxx), an administrator or crash shutdown, starting up, too many
# connections. Errors without a SQLSTATE are client-side connection failures.
_PG_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03", "53300")


def _database_unavailable(exc) -> bool:
    if isinstance(exc, InterfaceError):  # "connection already closed"
        return True
    if not isinstance(exc, OperationalError):
        return False
    cause = exc.__cause__
    if cause is not None and type(cause).__module__.split(".")[0] == "psycopg":
        state = getattr(cause, "sqlstate", None)
        return state is None or state.startswith(_PG_UNAVAILABLE_STATES)
    return "unable to open database file" in str(exc)


def _temporarily_unavailable(exc) -> tuple[str, str] | None:
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return "redis_unavailable", "A backing service (Redis) is unavailable; retry shortly."
    if isinstance(exc, OperationalError) and "database is locked" in str(exc):
        return "database_busy", "The database is busy; retry shortly."
    if _database_unavailable(exc):
        return "database_unavailable", "The database is unavailable; retry shortly."
    return None


def _unavailable_response(exc, code: str, detail: str) -> JsonResponse:
    logger.warning("answered 503: %s: %s", type(exc).__name__, exc)
    response = JsonResponse({"code": code, "detail": detail}, status=503)
    response["Retry-After"] = str(UNAVAILABLE_RETRY_AFTER_SECONDS)
    return response


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
    if isinstance(exc, RequestDataTooBig):
        return _too_large()
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


# --- outside DRF: handler400 / handler500 and the middleware ----------------------

JSON_PREFIXES = ("/api/", "/hooks/", "/inbox/api/")

# The reason phrase goes in `detail` when nothing better is known.
_CODES = {
    400: "bad_request", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 429: "throttled", 500: "server_error", 502: "bad_gateway",
    503: "unavailable",
}


def wants_json(request) -> bool:
    return request.path.startswith(JSON_PREFIXES)


def _too_large() -> JsonResponse:
    return JsonResponse({
        "code": "payload_too_large",
        "detail": f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes; send less.",
    }, status=413)


def server_error(request):
    """handler500: a JSON answer with an `error_id` that is in the log next to the traceback."""
    exc = sys.exc_info()[1]
    if not wants_json(request):
        return defaults.server_error(request)
    unavailable = _temporarily_unavailable(exc) if exc is not None else None
    if unavailable:
        return _unavailable_response(exc, *unavailable)
    error_id = uuid.uuid4().hex[:16]
    logger.error("error_id=%s: %s %s failed", error_id, request.method, request.path,
                 exc_info=exc is not None and (type(exc), exc, exc.__traceback__))
    return JsonResponse({
        "code": "server_error",
        "detail": f"The server failed; quote error_id {error_id} when you report it.",
        "error_id": error_id,
    }, status=500)


def bad_request(request, exception):
    """handler400 (Django's SuspiciousOperation family: too many fields, too large a body)."""
    if not wants_json(request):
        return defaults.bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return _too_large()
    return JsonResponse({"code": "bad_request", "detail": "The request was malformed."}, status=400)


class JsonErrorsMiddleware:
    """Outermost: under /api/ and /hooks/, every error leaves as `{code, detail}` JSON."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if not wants_json(request):
            return response
        if isinstance(response, HttpResponsePermanentRedirect) and _is_slash_redirect(request, response):
            # APPEND_SLASH's redirect drops a POST's body; a client must fix the URL instead.
            return JsonResponse({"code": "not_found",
                                 "detail": f"No such path; did you mean {request.path}/ (with a trailing slash)?"},
                                status=404)
        if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
            return response
        return _as_json(request, response)


def _is_slash_redirect(request, response) -> bool:
    return response["Location"].split("?", 1)[0].endswith(request.path + "/")


def _as_json(request, response) -> JsonResponse:
    status_code = response.status_code
    if status_code == 404:
        detail = f"No such path: {request.path}. The API is described at /api/schema/."
    elif status_code == 405:
        detail = f"{request.method} is not allowed here; allowed: {response.get('Allow', 'none')}."
    else:
        detail = response.reason_phrase
    converted = JsonResponse({"code": _CODES.get(status_code, "error"), "detail": detail}, status=status_code)
    for header in ("Allow", "Retry-After", "WWW-Authenticate", "Content-Range"):
        if header in response:
            converted[header] = response[header]
    return converted
