"""The live inbox over WebSocket: `/ws/inbox/` pushes a tenant's events as JSON.

Who may listen:
- a signed-in person (the Django session, through AuthMiddlewareStack): a
  tenant member joins that tenant's group; staff choose one with ?tenant=<slug>
  and always join the "staff" group, which carries alerts;
- an integration: with a ticket from `POST /api/v1/ws-ticket` as ?ticket=<ticket>
  (single use, short-lived), or its API key as `Authorization: Bearer <key>`. An
  API key in the URL (the former ?token=) is refused: proxies log URLs.

Refusals are accepted and then closed with an application code (4401 no or bad
credentials, 4403 tenant not allowed, 4429 too many connections), after a
{"type": "inbox.refused", "code", "reason"} frame: daphne drops the close reason,
and a browser cannot see an HTTP 403 from a rejected handshake at all.

The per-tenant cap is counted in Redis, so it holds across daphne processes:
a sorted set per tenant whose members are channel names scored by a lease
expiry. A consumer renews its lease while its socket lives; a daphne that dies
without closing its sockets stops renewing, and its connections stop counting
within one lease instead of forever (which a bare INCR/DECR counter would leak).
That timer is why this consumer is async, against Channels' advice to write
sync consumers by default; the database work still runs in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from messaging import presence
from messaging.live import STAFF_GROUP, tenant_group
from tenants.auth_failures import API_KEY, record_failure, retry_after, too_many_attempts
from tenants.authentication import member_tenant
from tenants.services import authenticate_api_key
from tenants.ws_tickets import redeem_ws_ticket
from waplatform.metrics import WEBSOCKET_CONNECTIONS
from waplatform.redis import get_channels_redis

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY_CONNECTIONS = 4429


class Refused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Access:
    tenant_id: int | None  # None: staff listening to alerts only
    tenant_slug: str
    staff: bool
    # A signed-in person acting for the tenant (their presence is tracked); None for an API key.
    user_id: int | None = None
    username: str = ""


def _query(scope) -> dict[str, str]:
    parsed = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {name: values[0] for name, values in parsed.items() if values}


def _api_token(scope) -> str:
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
    return ""


def resolve_access(scope) -> Access:
    """Who is connecting and to which tenant; raises Refused. Reads the database."""
    query = _query(scope)
    if "token" in query:
        raise Refused(CLOSE_UNAUTHENTICATED, "API keys are not accepted in the URL, where proxies log them: "
                      "POST /api/v1/ws-ticket and connect with ?ticket=<ticket>, or send 'Authorization: Bearer <key>'.")
    if "ticket" in query:
        tenant = redeem_ws_ticket(query["ticket"])
        if tenant is None:
            raise Refused(CLOSE_UNAUTHENTICATED, "Unknown, used or expired ticket: a ticket opens one socket within "
                          f"{settings.WS_TICKET_SECONDS} s; POST /api/v1/ws-ticket for a new one.")
        return Access(tenant_id=tenant.pk, tenant_slug=tenant.slug, staff=False)
    token = _api_token(scope)
    if token:
        return _api_key_access(scope, token)
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        raise Refused(CLOSE_UNAUTHENTICATED,
                      "Sign in, or connect with ?ticket=<ticket> (POST /api/v1/ws-ticket) "
                      "or 'Authorization: Bearer <api key>'.")
    slug = query.get("tenant", "").strip()
    tenant = member_tenant(user, slug or None)
    if tenant is not None:
        return Access(tenant_id=tenant.pk, tenant_slug=tenant.slug, staff=user.is_staff, user_id=user.pk,
                      username=user.get_username())
    if user.is_staff and not slug:
        return Access(tenant_id=None, tenant_slug="", staff=True)
    if slug:
        raise Refused(CLOSE_FORBIDDEN, f"No tenant {slug!r} that this account may watch.")
    raise Refused(CLOSE_FORBIDDEN, "Choose a tenant you belong to with ?tenant=<slug>."
                  if user.memberships.exists() else "This account is not a member of any tenant.")


def _api_key_access(scope, token: str) -> Access:
    api_key = authenticate_api_key(token)
    if api_key is None:
        # As for the REST API (tenants.authentication): unknown keys are counted per address.
        address = (scope.get("client") or ["unknown"])[0]
        wait = retry_after(API_KEY, address)
        if wait is not None:
            raise Refused(CLOSE_TOO_MANY_CONNECTIONS, too_many_attempts(wait))
        record_failure(API_KEY, address)
        raise Refused(CLOSE_UNAUTHENTICATED, "Unknown or revoked API key.")
    return Access(tenant_id=api_key.tenant_id, tenant_slug=api_key.tenant.slug, staff=False)


# --- the per-tenant connection cap ---------------------------------------------------

# KEYS[1] the tenant's set; ARGV: now, lease expiry, cap, member, key ttl.
_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""


@lru_cache(maxsize=4)
def _acquire_script(client):
    return client.register_script(_ACQUIRE)


def _connections_key(tenant_id: int) -> str:
    return f"inbox:connections:{tenant_id}"


def _lease_seconds() -> float:
    return float(settings.INBOX_CONNECTION_LEASE_SECONDS)


def acquire_connection(*, tenant_id: int, member: str) -> bool:
    """Count one more live connection for the tenant, unless it already has the cap."""
    client, now = get_channels_redis(), time.time()
    ttl = int(_lease_seconds()) + 1
    return bool(_acquire_script(client)(
        keys=[_connections_key(tenant_id)],
        args=[now, now + _lease_seconds(), settings.INBOX_MAX_CONNECTIONS_PER_TENANT, member, ttl],
    ))


def renew_connection(*, tenant_id: int, member: str) -> None:
    # Plain ZADD, not XX: after a Redis restart the live socket counts again.
    client, key = get_channels_redis(), _connections_key(tenant_id)
    with client.pipeline() as pipe:
        pipe.zadd(key, {member: time.time() + _lease_seconds()})
        pipe.expire(key, int(_lease_seconds()) + 1)
        pipe.execute()


def release_connection(*, tenant_id: int, member: str) -> None:
    get_channels_redis().zrem(_connections_key(tenant_id), member)


def live_connections(*, tenant_id: int) -> int:
    client, key = get_channels_redis(), _connections_key(tenant_id)
    client.zremrangebyscore(key, "-inf", time.time())
    return client.zcard(key)


# --- the consumer ----------------------------------------------------------------------


class InboxConsumer(AsyncJsonWebsocketConsumer):
    """Pushes every event of the caller's tenant (and alerts, for staff) as its JSON envelope.

    Clients may send {"type": "ping"}; the answer is {"type": "pong"}. A signed-in
    person's socket also keeps their presence (messaging.presence) and may send
    {"type": "presence", "status": "away"|"online"}; changes go to the tenant's
    sockets as {"type": "member.presence", "data": {"user_id", "username", "status"}}.
    """

    access: Access | None = None
    holds_lease = False
    counted = False
    renewer: asyncio.Task | None = None

    async def connect(self):
        try:
            self.access = await database_sync_to_async(resolve_access)(self.scope)
            if self.access.tenant_id is not None:
                await self._take_lease()
        except Refused as refusal:
            await self._refuse(refusal)
            return
        if self.access.tenant_id is not None:
            self.groups.append(tenant_group(self.access.tenant_id))
        if self.access.staff:
            self.groups.append(STAFF_GROUP)
        # Subscribed before the accept: an event published once the client sees the
        # socket open is never missed.
        for group in self.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        WEBSOCKET_CONNECTIONS.inc()
        self.counted = True
        await self.send_json({"type": "inbox.ready", "tenant": self.access.tenant_id,
                              "data": {"tenant": self.access.tenant_slug or None, "staff": self.access.staff}})
        if self._tracks_presence:
            await self._presence_changed(lambda: presence.socket_alive(
                tenant_id=self.access.tenant_id, user_id=self.access.user_id, socket=self.channel_name,
                lease_seconds=_lease_seconds()))

    async def _take_lease(self) -> None:
        tenant_id = self.access.tenant_id
        if not await sync_to_async(acquire_connection)(tenant_id=tenant_id, member=self.channel_name):
            limit = settings.INBOX_MAX_CONNECTIONS_PER_TENANT
            raise Refused(CLOSE_TOO_MANY_CONNECTIONS,
                          f"This tenant already has {limit} live inbox connections; close one or try again later.")
        self.holds_lease = True
        self.renewer = asyncio.get_running_loop().create_task(self._renew_lease())

    async def _renew_lease(self) -> None:
        interval = _lease_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await sync_to_async(renew_connection)(tenant_id=self.access.tenant_id, member=self.channel_name)
                if self._tracks_presence:
                    await sync_to_async(presence.socket_alive)(
                        tenant_id=self.access.tenant_id, user_id=self.access.user_id, socket=self.channel_name,
                        lease_seconds=_lease_seconds())
            except Exception:  # Redis away for a moment: the next round tries again
                logger.exception("could not renew the inbox connection lease of %s", self.channel_name)

    @property
    def _tracks_presence(self) -> bool:
        return self.access is not None and self.access.tenant_id is not None and self.access.user_id is not None

    async def _presence_changed(self, change) -> None:
        """Apply `change` (a sync call on messaging.presence) and tell the tenant if the person's status moved."""
        tenant_id, user_id = self.access.tenant_id, self.access.user_id

        def apply() -> tuple[str, str]:
            before = presence.status_of(tenant_id=tenant_id, user_id=user_id)
            change()
            return before, presence.status_of(tenant_id=tenant_id, user_id=user_id)

        before, after = await sync_to_async(apply)()
        if before != after:
            frame = {"type": "member.presence", "tenant": tenant_id,
                     "data": {"user_id": user_id, "username": self.access.username, "status": after}}
            await self.channel_layer.group_send(tenant_group(tenant_id), {"type": "event.message", "event": frame})

    async def _refuse(self, refusal: Refused) -> None:
        await self.accept()
        await self.send_json({"type": "inbox.refused", "code": refusal.code, "reason": refusal.reason})
        await self.close(code=refusal.code, reason=refusal.reason)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict):
            return
        if content.get("type") == "ping":
            await self.send_json({"type": "pong"})
        elif content.get("type") == "presence" and self._tracks_presence \
                and content.get("status") in (presence.ONLINE, presence.AWAY):
            away = content["status"] == presence.AWAY
            await self._presence_changed(lambda: presence.set_away(
                tenant_id=self.access.tenant_id, user_id=self.access.user_id, away=away))

    async def event_message(self, message):
        event = message["event"]
        if event.get("type") == "member.presence" and self.access.user_id is not None \
                and event["data"]["user_id"] == self.access.user_id:
            return  # the person's own page shows their status already
        await self.send_json(event)

    async def disconnect(self, code):
        if self.renewer is not None:
            self.renewer.cancel()
        if self.counted:
            WEBSOCKET_CONNECTIONS.dec()
            self.counted = False
        if self.holds_lease:
            self.holds_lease = False
            await sync_to_async(release_connection)(tenant_id=self.access.tenant_id, member=self.channel_name)
            if self._tracks_presence:
                await self._presence_changed(lambda: presence.socket_closed(
                    tenant_id=self.access.tenant_id, user_id=self.access.user_id, socket=self.channel_name))
