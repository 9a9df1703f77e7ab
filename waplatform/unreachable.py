"""A `manage.py` command that cannot reach Redis or the database says so in one line.

A traceback through redis-py's retry machinery tells an operator nothing they
can act on; the URL the command used and the setting that names it do.
"""

from __future__ import annotations

from django.conf import settings
from django.db import OperationalError as DatabaseOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def _redacted(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "***@" + rest.split("@", 1)[1]
    return scheme + sep + rest


def describe(exc: BaseException) -> str | None:
    """The one line for an unreachable backing service, or None for any other error."""
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return (f"Redis is unreachable at {_redacted(settings.REDIS_URL)} ({exc}). Is the platform running "
                "(`make run` starts an embedded Redis)? Set REDIS_URL, or EMBEDDED_REDIS_PORT, in .env "
                "to the one it uses.")
    if isinstance(exc, DatabaseOperationalError) and _is_unreachable(exc):
        database = settings.DATABASES["default"]
        where = database.get("HOST") or database.get("NAME")
        return f"The database is unreachable ({where}): {exc}. Check DATABASE_URL in .env or the environment."
    return None


# SQLite's and PostgreSQL's words for "could not get there" (not "no such table", a lock, a bad query).
_UNREACHABLE_MARKERS = ("unable to open database", "could not connect", "connection refused", "connection to server",
                        "could not translate host name", "timeout expired", "password authentication failed")


def _is_unreachable(exc: DatabaseOperationalError) -> bool:
    text = str(exc).lower()
    return any(marker in text for marker in _UNREACHABLE_MARKERS)
