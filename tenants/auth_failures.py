"""Failed sign-ins and unknown API keys, counted per client address in Redis.

One mechanism for both doors (the admin and inbox sign-in forms, API keys on
REST and WebSocket), shared by every web process. A window starts at an
address's first failure; past the limit every attempt from that address is
refused (429 + Retry-After) until the window ends, a correct password
included: otherwise a guesser holding any valid account of its own could
keep guessing. A success does not reset the count, for the same reason.

The address is REMOTE_ADDR (an IPv6 address counts for its /64): daphne runs with --proxy-headers behind nginx,
which replaces X-Forwarded-For with the peer it saw (docs/deployment.md), so
it is the client's and not the proxy's.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from functools import wraps

from django.conf import settings
from django.http import HttpResponse

from waplatform.redis import get_redis


@dataclass(frozen=True)
class Door:
    name: str
    limit_setting: str
    window_setting: str

    @property
    def limit(self) -> int:
        return getattr(settings, self.limit_setting)

    @property
    def window(self) -> int:
        return getattr(settings, self.window_setting)


LOGIN = Door("login", "LOGIN_FAILURE_LIMIT", "LOGIN_FAILURE_WINDOW_SECONDS")
API_KEY = Door("api_key", "API_KEY_FAILURE_LIMIT", "API_KEY_FAILURE_WINDOW_SECONDS")


def _bucket(address: str) -> str:
    """An IPv6 client usually holds a whole /64: counted per address, it would get 2**64 budgets."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return str(ip)
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.ip_network(f"{ip}/64", strict=False))


def _key(door: Door, address: str) -> str:
    return f"wap:auth-failures:{door.name}:{_bucket(address)}"


def client_address(meta) -> str:
    """From a request's META."""
    return meta.get("REMOTE_ADDR") or "unknown"


def record_failure(door: Door, address: str) -> None:
    key = _key(door, address)
    with get_redis().pipeline(transaction=True) as pipe:
        # The window is set with the key, in one transaction: a process that dies between
        # the two commands cannot leave a counter that never expires.
        pipe.set(key, 0, ex=door.window, nx=True)
        pipe.incr(key)
        pipe.execute()


def retry_after(door: Door, address: str) -> int | None:
    """Seconds until the address may try again, or None when it may now."""
    with get_redis().pipeline(transaction=True) as pipe:
        pipe.get(key := _key(door, address))
        pipe.ttl(key)
        count, ttl = pipe.execute()
    if count is None or int(count) < door.limit:
        return None
    return max(1, int(ttl)) if ttl and ttl > 0 else 1


def too_many_attempts(wait: int) -> str:
    minutes = max(1, round(wait / 60))
    return f"Too many failed attempts from your address; try again in {minutes} minute{'s' if minutes > 1 else ''}."


def throttled_sign_in(view):
    """Wraps a sign-in view (the admin's, the inbox's): a POST from an address past the limit
    answers 429 without checking the password. Failures are counted by on_login_failed."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "POST":
            wait = retry_after(LOGIN, client_address(request.META))
            if wait is not None:
                response = HttpResponse(too_many_attempts(wait), status=429, content_type="text/plain; charset=utf-8")
                response["Retry-After"] = str(wait)
                return response
        return view(request, *args, **kwargs)

    return wrapper


def on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    """user_login_failed receiver: every form that calls authenticate(request, ...) counts."""
    if request is not None:
        record_failure(LOGIN, client_address(request.META))

