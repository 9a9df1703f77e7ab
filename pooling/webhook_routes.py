"""Which tenant a slot's signed webhook speaks for, kept per process.

Every bridge webhook (a contact's message, then each of the three acks of every
reply) asked the database which tenant its session is, a join of sessions and
assignments with a DISTINCT (sessions.session_for_webhook). The answer stays true
until the tenant, its session or one of its assignments is deleted: a session keeps
its name for life, and assignments are history that only goes with the tenant.
So each process keeps it behind a version stamp (waplatform/stamped_cache.py,
`wap:webhook-routes:version`) that any such delete renews after its commit
(PoolingConfig.ready): from then on no process routes an event to a deleted tenant.
Fails closed: with the cache Redis unreachable every webhook reads the database.
"""

from __future__ import annotations

from pooling.sessions import session_for_webhook
from waplatform.stamped_cache import StampedCache

_routes = StampedCache("wap:webhook-routes:version", ttl_setting="WEBHOOK_ROUTE_CACHE_SECONDS",
                       size_setting="WEBHOOK_ROUTE_CACHE_SIZE")


def tenant_for_webhook(*, slot_id: int, session_name: str) -> int | None:
    """The tenant id session_for_webhook would answer with, or None (never kept: read again each time)."""

    def load() -> int | None:
        session = session_for_webhook(slot_id=slot_id, session_name=session_name)
        return session.tenant_id if session is not None else None

    return _routes.get((slot_id, session_name), load)


def forget_routes(sender, instance, **kwargs) -> None:
    """post_delete of a tenant, session or assignment."""
    _routes.forget_on_commit()
