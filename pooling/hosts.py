"""Which host runs which local bridge: host-aware provisioning.

A `local` slot's sandbox worker is a process on one host. That host's
`bridges` role (manage.py run_bridge_agent) serves the queue
`bridges@<WAP_HOST>` and beats in Redis every BRIDGE_HOST_BEAT_SECONDS. A new
local slot is given a live bridge host (the one with the fewest live local
slots), and its provisioning, its health checks and every pid action (is it
alive, stop it) run as jobs on that host's queue: a pid means something only
on the host that started it, so no host ever judges another host's pid.

A host not heard from for BRIDGE_HOST_TTL_SECONDS is gone: the health cycle,
wherever it runs, marks its slots down and fails their tenants over. With no
bridges role beating at all (tests, a single process), a slot's host is
empty and whichever maintenance worker provisions it records its own host,
as before hosts existed. Registered slots (WAHA, Cloud API) have no host and
are checked from any host.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db.models import Count
from redis.exceptions import RedisError

from pooling.models import Slot
from waplatform.queues import host_queue_name
from waplatform.redis import get_redis

logger = logging.getLogger(__name__)

BEATS_KEY = "wap:bridge-hosts"


def this_host() -> str:
    return settings.WAP_HOST


def beat(host: str | None = None) -> None:
    get_redis().hset(BEATS_KEY, host or this_host(), time.time())


def forget(host: str | None = None) -> None:
    """A host that stops cleanly stops its bridges too: it is gone at once, not after the TTL."""
    get_redis().hdel(BEATS_KEY, host or this_host())


def live_hosts() -> set[str]:
    cutoff = time.time() - settings.BRIDGE_HOST_TTL_SECONDS
    return {host.decode() if isinstance(host, bytes) else host
            for host, at in get_redis().hgetall(BEATS_KEY).items() if float(at) >= cutoff}


def _live_hosts_or_none() -> set[str]:
    try:
        return live_hosts()
    except RedisError:
        # Placing a tenant must not fail on Redis: the slot then has no host yet and the
        # first maintenance worker that runs its provisioning job adopts it.
        logger.warning("bridge hosts unknown (Redis unavailable); the new slot gets its host when provisioned")
        return set()


def choose_host() -> str:
    """The live bridge host with the fewest live local slots; "" when no bridges role beats."""
    live = _live_hosts_or_none()
    if not live:
        return ""
    counts = dict(
        Slot.objects.filter(provisioner=Slot.Provisioner.LOCAL, host__in=live, state__in=Slot.LIVE_STATES)
        .values_list("host").annotate(n=Count("pk")).values_list("host", "n")
    )
    return min(sorted(live), key=lambda host: counts.get(host, 0))


def runs_here(slot: Slot) -> bool:
    """Whether this process may act on the slot's process (check its pid, stop it)."""
    return slot.provisioner != Slot.Provisioner.LOCAL or slot.host in ("", this_host())


def queue_for(slot: Slot) -> str:
    """Where work on the slot's process goes: its host's queue, or `maintenance` when it has none."""
    if slot.provisioner == Slot.Provisioner.LOCAL and slot.host:
        return host_queue_name(slot.host)
    return "maintenance"


def hosted_elsewhere(slots: list[Slot]) -> dict[str, list[Slot]]:
    """The local slots of other hosts, by host: this host must not probe their processes."""
    by_host: dict[str, list[Slot]] = {}
    for slot in slots:
        if not runs_here(slot):
            by_host.setdefault(slot.host, []).append(slot)
    return by_host

