"""Short-lived, single-use tickets for the live-inbox WebSocket.

A browser cannot set an Authorization header on a WebSocket, and an API key in
the URL ends up in every proxy's access log. A ticket is asked for with the key
(`POST /api/v1/ws-ticket`), lives WS_TICKET_SECONDS in Redis, and opens one
socket: GETDEL takes it atomically, so two connections racing on one ticket
get one socket between them. Only a hash is stored, so a Redis dump holds no
usable ticket.
"""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings

from tenants.models import Tenant
from waplatform.redis import get_redis


def _key(ticket: str) -> str:
    return "wap:ws-ticket:" + hashlib.sha256(ticket.encode()).hexdigest()


def issue_ws_ticket(*, tenant: Tenant) -> str:
    ticket = secrets.token_urlsafe(32)
    get_redis().set(_key(ticket), tenant.pk, ex=settings.WS_TICKET_SECONDS)
    return ticket


def redeem_ws_ticket(ticket: str) -> Tenant | None:
    """The ticket's tenant, once; None for an unknown, used or expired ticket."""
    tenant_id = get_redis().getdel(_key(ticket))
    if tenant_id is None:
        return None
    return Tenant.objects.filter(pk=int(tenant_id)).first()
