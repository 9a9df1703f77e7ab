import time
from dataclasses import dataclass, field

from django.db.models import Count, Sum

from pooling.models import Slot, WhatsAppSession
from tenants.models import Tier
from waplatform.redis import get_redis


@dataclass
class PoolStatus:
    tier: Tier
    slots_by_state: dict[str, int] = field(default_factory=dict)
    capacity: int = 0
    used: int = 0
    waiting: int = 0

    @property
    def utilisation(self) -> float:
        return round(100 * self.used / self.capacity, 1) if self.capacity else 0.0


def pool_statuses() -> list[PoolStatus]:
    """Each tier's pool now: the one aggregation behind snapshots, the Pools page, alerts and /metrics.

    Four queries whatever the number of tiers and slots. Capacity and used count
    placeable slots only (provisioning, ready): a down or draining slot's room is
    not room a tenant can be given.
    """
    waiting = dict(
        WhatsAppSession.objects.filter(placement=WhatsAppSession.Placement.WAITING)
        .values_list("tenant__tier_id")
        .annotate(n=Count("pk"))
    )
    live = Slot.objects.exclude(state=Slot.State.RETIRED)
    by_state: dict[int, dict[str, int]] = {}
    for tier_id, state, n in live.values_list("tier_id", "state").annotate(n=Count("pk")).order_by():
        by_state.setdefault(tier_id, {})[state] = n
    totals = {
        row["tier_id"]: row
        for row in live.filter(state__in=Slot.PLACEABLE_STATES)
        .values("tier_id")
        .annotate(capacity=Sum("capacity"), used=Sum("used"))
        .order_by()
    }
    return [
        PoolStatus(
            tier=tier,
            slots_by_state=by_state.get(tier.pk, {}),
            capacity=totals.get(tier.pk, {}).get("capacity") or 0,
            used=totals.get(tier.pk, {}).get("used") or 0,
            waiting=waiting.get(tier.pk, 0),
        )
        for tier in Tier.objects.order_by("-tenants_per_slot")
    ]


LAST_HEALTH_CHECK_KEY = "wap:pool:last_health_check"


def last_health_check_age() -> float | None:
    """Seconds since the periodic health check last finished (pooling.jobs writes it); None if never."""
    value = get_redis().get(LAST_HEALTH_CHECK_KEY)
    return time.time() - float(value) if value else None
