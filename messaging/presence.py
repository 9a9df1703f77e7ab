"""Who of a tenant's people is in the inbox now: online, away, or (absent) offline.

Kept in Redis, not the database: it changes with every socket and matters
only while it is true. Per tenant,
- `inbox:presence:<tenant>`, a sorted set of "<user id>:<socket>" scored by a
  lease expiry that the socket renews (as the connection cap does), so the
  sockets of a killed daphne stop counting within one lease;
- `inbox:away:<tenant>`, the set of user ids who chose "away" (kept a week,
  so a person stays away across a page reload).

A person is online with at least one live socket and not away. Changes reach
the tenant's other sockets as `member.presence` frames (messaging.consumers);
they are not bus events: nothing is stored or sent to webhooks for them.
"""

from __future__ import annotations

import time

from waplatform.redis import get_redis

AWAY_TTL_SECONDS = 7 * 24 * 3600
ONLINE, AWAY, OFFLINE = "online", "away", "offline"


def _sockets_key(tenant_id: int) -> str:
    return f"inbox:presence:{tenant_id}"


def _away_key(tenant_id: int) -> str:
    return f"inbox:away:{tenant_id}"


def _live_user_ids(client, tenant_id: int) -> set[int]:
    key = _sockets_key(tenant_id)
    client.zremrangebyscore(key, "-inf", time.time())
    return {int(member.split(b":", 1)[0]) for member in client.zrange(key, 0, -1)}


def status_of(*, tenant_id: int, user_id: int) -> str:
    client = get_redis()
    if user_id not in _live_user_ids(client, tenant_id):
        return OFFLINE
    return AWAY if client.sismember(_away_key(tenant_id), user_id) else ONLINE


def presence_of(*, tenant_id: int) -> dict[int, str]:
    """{user id: online|away} for everyone with a live socket; the rest are offline."""
    client = get_redis()
    live = _live_user_ids(client, tenant_id)
    away = {int(u) for u in client.smembers(_away_key(tenant_id))}
    return {user_id: AWAY if user_id in away else ONLINE for user_id in live}


def online_user_ids(*, tenant_id: int) -> list[int]:
    return sorted(user_id for user_id, status in presence_of(tenant_id=tenant_id).items() if status == ONLINE)


def socket_alive(*, tenant_id: int, user_id: int, socket: str, lease_seconds: float) -> None:
    """A socket of the person opened or is still open: its lease runs lease_seconds from now."""
    client, key = get_redis(), _sockets_key(tenant_id)
    with client.pipeline() as pipe:
        pipe.zadd(key, {f"{user_id}:{socket}": time.time() + lease_seconds})
        pipe.expire(key, int(lease_seconds) + 1)
        pipe.execute()


def socket_closed(*, tenant_id: int, user_id: int, socket: str) -> None:
    get_redis().zrem(_sockets_key(tenant_id), f"{user_id}:{socket}")


def set_away(*, tenant_id: int, user_id: int, away: bool) -> None:
    client, key = get_redis(), _away_key(tenant_id)
    if away:
        with client.pipeline() as pipe:
            pipe.sadd(key, user_id)
            pipe.expire(key, AWAY_TTL_SECONDS)
            pipe.execute()
    else:
        client.srem(key, user_id)
