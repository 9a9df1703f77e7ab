"""Redis addresses from the environment: a plain URL, or Redis Sentinel by URL.

    redis://[[user]:password@]host:port/db          one server (redis-py's own URL forms too)
    redis+sentinel://[[user]:password@]h1:p1,h2:p2,.../SERVICE[/DB][?sentinel_password=...]

A Sentinel URL names the sentinels (comma-separated, port 26379 when left out),
the monitored service (`sentinel monitor SERVICE ...` in sentinel.conf) and the
database. The user and password are the Redis master's; `sentinel_password`
(and `sentinel_username`) authenticate to the sentinels themselves when they
require it. Every client the platform builds from such an address asks the
sentinels for the current master and asks again after a connection fails, so a
failover is followed without a restart.

No Django: imported by settings.py before Django is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio.retry import Retry as AsyncRetry
from redis.asyncio.sentinel import SentinelManagedConnection as AsyncSentinelManagedConnection
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import SentinelManagedConnection

SENTINEL_SCHEME = "redis+sentinel"
DEFAULT_SENTINEL_PORT = 26379
# Sentinels answer on the local network within milliseconds; a dead one must not hold a failover up.
SENTINEL_SOCKET_TIMEOUT_SECONDS = 2.0


class InvalidRedisURL(ValueError):
    pass


# redis-py 8.1's Sentinel connections ask the sentinels for the master only in connect().
# A command that fails and is retried reconnects through connect_check_health() instead,
# to the address it had: every retry of a command caught by a failover went back to the
# dead master (seen here: a BLMOVE retried for its whole 15 s budget while the replica had
# been promoted after 2 s, so every rq worker stopped). These ask the sentinels on every
# reconnection, retried or not.
class SentinelFollowingConnection(SentinelManagedConnection):
    def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True):
        # connect_to() comes back here with retry_socket_connect=False, the address just resolved.
        if not self._sock and retry_socket_connect and self.connection_pool.is_master:
            return self.connect_to(self.connection_pool.get_master_address())
        return super().connect_check_health(check_health=check_health, retry_socket_connect=retry_socket_connect)


class AsyncSentinelFollowingConnection(AsyncSentinelManagedConnection):
    async def connect_check_health(self, check_health: bool = True, retry_socket_connect: bool = True):
        if not self.is_connected and retry_socket_connect and self.connection_pool.is_master:
            return await self.connect_to(await self.connection_pool.get_master_address())
        return await super().connect_check_health(check_health=check_health,
                                                  retry_socket_connect=retry_socket_connect)


@dataclass(frozen=True)
class RedisAddress:
    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = None

    @property
    def is_sentinel(self) -> bool:
        return bool(self.sentinels)

    def sentinel_kwargs(self) -> dict:
        kwargs = {
            "socket_connect_timeout": SENTINEL_SOCKET_TIMEOUT_SECONDS,
            "socket_timeout": SENTINEL_SOCKET_TIMEOUT_SECONDS,
        }
        if self.sentinel_username:
            kwargs["username"] = self.sentinel_username
        if self.sentinel_password:
            kwargs["password"] = self.sentinel_password
        return kwargs

    def master_kwargs(self) -> dict:
        """Keyword arguments for connections to the master (db and credentials)."""
        kwargs: dict = {"db": self.db}
        if self.username:
            kwargs["username"] = self.username
        if self.password:
            kwargs["password"] = self.password
        return kwargs

    def redacted(self) -> str:
        """The address for logs and pages: no password."""
        if self.is_sentinel:
            hosts = ",".join(f"{host}:{port}" for host, port in self.sentinels)
            return f"{SENTINEL_SCHEME}://{hosts}/{self.service}/{self.db}"
        parts = urlsplit(self.url)
        host = parts.hostname or parts.path
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path if parts.hostname else ''}"


def parse_redis_url(url: str) -> RedisAddress:
    """Parse a Redis address; raises InvalidRedisURL with what to write instead."""
    if not url.startswith(f"{SENTINEL_SCHEME}://"):
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise InvalidRedisURL(
                f"{url!r} is not a Redis URL: use redis://host:port/db, rediss://... (TLS), unix:///path "
                f"or {SENTINEL_SCHEME}://sentinel1:26379,sentinel2:26379/SERVICE/db")
        return RedisAddress(url=url)

    rest = url[len(SENTINEL_SCHEME) + 3:]
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    if not at:
        userinfo, hostlist = "", netloc
    username, _, password = userinfo.partition(":")
    sentinels = tuple(_host_port(entry, url) for entry in hostlist.split(",") if entry.strip())
    if not sentinels:
        raise InvalidRedisURL(f"{_redact(url)}: name at least one sentinel, as host:port[,host:port...]")
    segments = [unquote(s) for s in path.split("/") if s]
    if not segments or len(segments) > 2:
        raise InvalidRedisURL(
            f"{_redact(url)}: the path is /SERVICE or /SERVICE/DB, SERVICE being the name the sentinels "
            "monitor (`sentinel monitor SERVICE host port quorum`)")
    service = segments[0]
    try:
        db = int(segments[1]) if len(segments) == 2 else 0
    except ValueError:
        raise InvalidRedisURL(f"{_redact(url)}: the database after the service must be a number") from None
    options = {key: values[-1] for key, values in parse_qs(query, keep_blank_values=True).items()}
    unknown = set(options) - {"sentinel_password", "sentinel_username"}
    if unknown:
        raise InvalidRedisURL(
            f"{_redact(url)}: unknown option(s) {', '.join(sorted(unknown))}; "
            "known: sentinel_password, sentinel_username")
    return RedisAddress(
        url=url,
        sentinels=sentinels,
        service=service,
        db=db,
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
    )


def _host_port(entry: str, url: str) -> tuple[str, int]:
    entry = entry.strip()
    if entry.startswith("["):  # [IPv6]:port
        host, _, port = entry[1:].partition("]")
        port = port.lstrip(":")
    else:
        host, _, port = entry.rpartition(":") if ":" in entry else (entry, "", "")
    try:
        return host, int(port) if port else DEFAULT_SENTINEL_PORT
    except ValueError:
        raise InvalidRedisURL(f"{_redact(url)}: {entry!r} is not host:port") from None


def _redact(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    userinfo, at, after = rest.rpartition("@")
    return f"{scheme}{sep}***@{after}" if at else url


# --- configuration for the libraries that open their own connections -------------------------


def rq_queue_config(address: RedisAddress, client_kwargs: dict) -> dict:
    """The connection part of one RQ_QUEUES entry (django-rq 4: URL, or SENTINELS + MASTER_NAME)."""
    if not address.is_sentinel:
        return {"URL": address.url}
    master = address.master_kwargs()
    return {
        "SENTINELS": list(address.sentinels),
        "MASTER_NAME": address.service,
        "DB": master.pop("db"),
        "PASSWORD": master.pop("password", None),
        "USERNAME": master.pop("username", None),
        "SENTINEL_KWARGS": address.sentinel_kwargs(),
        # django-rq reads the client settings from here for Sentinel (REDIS_CLIENT_KWARGS only
        # for host/port entries).
        "CONNECTION_KWARGS": dict(client_kwargs),
    }


def retries_covering(seconds: float) -> int:
    """Retries of redis-py's ExponentialBackoff(cap=2, base=0.1) whose waits add up to `seconds`."""
    backoff = ExponentialBackoff(cap=2, base=0.1)
    attempts, waited = 0, 0.0
    while waited < seconds:
        attempts += 1
        waited += backoff.compute(attempts)
    return max(attempts, 3)


def channels_host(address: RedisAddress, *, follow_seconds: float) -> str | dict:
    """One entry of channels-redis's `hosts` (its create_pool takes master_name + sentinels).

    Through Sentinel its asyncio clients retry like the others (REDIS_SENTINEL_FOLLOW_SECONDS):
    a group_send during a failover waits for the new master, and a subscriber's reconnection
    subscribes again there.
    """
    if not address.is_sentinel:
        return address.url
    return {
        "master_name": address.service,
        "sentinels": list(address.sentinels),
        "sentinel_kwargs": address.sentinel_kwargs(),
        "socket_connect_timeout": 10,
        "socket_keepalive": True,
        "health_check_interval": 30,
        "retry": AsyncRetry(ExponentialBackoff(cap=2, base=0.1), retries_covering(follow_seconds)),
        "connection_class": AsyncSentinelFollowingConnection,
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        **address.master_kwargs(),
    }
