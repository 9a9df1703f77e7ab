from dataclasses import dataclass, field

from django.db.models import Count, Sum

from pooling.models import Slot, WhatsAppSession
from tenants.models import Tier


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
    waiting = dict(
        WhatsAppSession.objects.filter(placement=WhatsAppSession.Placement.WAITING)
        .values_list("tenant__tier_id")
        .annotate(n=Count("pk"))
    )
    rows = []
    for tier in Tier.objects.order_by("-tenants_per_slot"):
        slots = Slot.objects.filter(tier=tier).exclude(state=Slot.State.RETIRED)
        totals = slots.filter(state__in=Slot.PLACEABLE_STATES).aggregate(capacity=Sum("capacity"), used=Sum("used"))
        rows.append(
            PoolStatus(
                tier=tier,
                slots_by_state=dict(slots.values_list("state").annotate(n=Count("pk"))),
                capacity=totals["capacity"] or 0,
                used=totals["used"] or 0,
                waiting=waiting.get(tier.pk, 0),
            )
        )
    return rows
