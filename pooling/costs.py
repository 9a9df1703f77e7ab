"""Cost per tenant: slot time shared among the tenants on the slot at each moment.

For each slot, the assignment intervals that overlap the period cut the
period into segments; in a segment with n tenants each pays
hours x slot_cost_per_hour / n. Time a slot stands empty is pool overhead,
charged to no tenant but counted in the pool's cost.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Callable

from django.db.models import Q
from django.utils import timezone

from pooling.models import Assignment, Slot
from tenants.models import Tenant

HOUR = Decimal(3600)
CENT = Decimal("0.0001")  # costs accrue per second: kept to 1/100 of a cent, shown to the cent
MONEY = Decimal("0.01")


def money(value) -> Decimal:
    """Every amount a person reads (API, pages, CSV) has two decimals."""
    return Decimal(value).quantize(MONEY)


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def billed_since(*, created_at: datetime, now: datetime) -> datetime:
    """A tenant created this month owes the price from its creation, not from the 1st."""
    return max(month_start(now), created_at)


def price_to_date(*, monthly_price: Decimal, since: datetime, now: datetime) -> Decimal:
    """The monthly price pro-rated to the time between `since` and now, in this month's length."""
    start = month_start(now)
    next_month = (start + timedelta(days=32)).replace(day=1)
    share = Decimal(max(0.0, (now - since).total_seconds())) / Decimal((next_month - start).total_seconds())
    return money(monthly_price * share)


def slot_overhead(*, start: datetime, end: datetime) -> dict[str, Decimal]:
    """The operator's own cost per tier name over [start, end): slot time no tenant paid for.

    A live slot costs its tier's hourly rate whether or not anyone is on it;
    what tenants were charged (slot_cost_by_tenant) is taken off, leaving the
    time each slot stood empty, or down and emptied by failover.
    """
    slots = Slot.objects.filter(Q(retired_at__isnull=True) | Q(retired_at__gt=start), created_at__lt=end)
    owned: dict[str, Decimal] = defaultdict(Decimal)
    slot_tier: dict[int, str] = {}
    for slot_id, tier_id, rate, created, retired in slots.values_list(
            "pk", "tier__name", "tier__slot_cost_per_hour", "created_at", "retired_at"):
        lived = (min(retired or end, end) - max(created, start)).total_seconds()
        owned[tier_id] += Decimal(max(0.0, lived)) / HOUR * rate
        slot_tier[slot_id] = tier_id
    for slot_id, amount in _charged_by_slot(start=start, end=end).items():
        if slot_id in slot_tier:
            owned[slot_tier[slot_id]] -= amount
    return {tier: money(max(Decimal(0), amount)) for tier, amount in sorted(owned.items())}


def _overlapping_assignments(start: datetime, end: datetime, **filters):
    return Assignment.objects.filter(Q(ended_at__isnull=True) | Q(ended_at__gt=start), started_at__lt=end, **filters)


def _shares(*, start: datetime, end: datetime, slot_ids=None):
    """(slot id, tenant id, cost) for each tenant's share of each slot over [start, end)."""
    assignments = _overlapping_assignments(start, end).select_related("slot__tier")
    if slot_ids is not None:
        assignments = assignments.filter(slot_id__in=slot_ids)
    by_slot: dict[int, list[Assignment]] = defaultdict(list)
    for a in assignments:
        by_slot[a.slot_id].append(a)
    for slot_id, rows in by_slot.items():
        rate = rows[0].slot.tier.slot_cost_per_hour
        spans = [(max(a.started_at, start), min(a.ended_at or end, end), a.tenant_id) for a in rows]
        cuts = sorted({t for s, e, _ in spans for t in (s, e)})
        for seg_start, seg_end in zip(cuts, cuts[1:]):
            present = [tenant for s, e, tenant in spans if s <= seg_start and e >= seg_end]
            if not present:
                continue
            share = Decimal((seg_end - seg_start).total_seconds()) / HOUR * rate / len(present)
            for tenant_id in present:
                yield slot_id, tenant_id, share


def slot_cost_by_tenant(*, start: datetime, end: datetime, slot_ids=None) -> dict[int, Decimal]:
    """Slot cost per tenant id over [start, end)."""
    costs: dict[int, Decimal] = defaultdict(Decimal)
    for _, tenant_id, share in _shares(start=start, end=end, slot_ids=slot_ids):
        costs[tenant_id] += share
    return {k: v.quantize(CENT) for k, v in costs.items()}


def _charged_by_slot(*, start: datetime, end: datetime) -> dict[int, Decimal]:
    charged: dict[int, Decimal] = defaultdict(Decimal)
    for slot_id, _, share in _shares(start=start, end=end):
        charged[slot_id] += share
    return charged


@dataclass
class TenantCost:
    tenant_id: int
    slots: Decimal
    messages: Decimal = Decimal(0)
    ai: Decimal = Decimal(0)
    media: Decimal = Decimal(0)
    since: datetime | None = None
    price_to_date: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.slots + self.messages + self.ai + self.media


CostContributor = Callable[..., dict[int, Decimal]]
_contributors: dict[str, CostContributor] = {}


def register_cost_contributor(name: str, contributor: CostContributor) -> None:
    """Apps above pooling add a cost part (messages, AI tokens) from their AppConfig.ready().

    `contributor(since=, tenant_ids=)` returns {tenant id: cost since then} for
    those tenants (every tenant when `tenant_ids` is None), in a fixed number of
    queries, so a page of every tenant's costs does not query per tenant.
    Pooling cannot import those apps (DESIGN.md dependency order), so they come to it.
    """
    _contributors[name] = contributor


def contributed_costs(*, since: datetime, tenant_ids: list[int] | None = None) -> dict[str, dict[int, Decimal]]:
    """{part name: {tenant id: cost}} from every registered contributor."""
    return {name: contributor(since=since, tenant_ids=tenant_ids) for name, contributor in _contributors.items()}


def tenant_cost_month_to_date(*, tenant: Tenant, now: datetime | None = None) -> TenantCost:
    now = now or timezone.now()
    start = month_start(now)
    slot_ids = _overlapping_assignments(start, now, tenant=tenant).values_list("slot_id", flat=True)
    slots = slot_cost_by_tenant(start=start, end=now, slot_ids=list(slot_ids)).get(tenant.pk, Decimal(0))
    extra = contributed_costs(since=start, tenant_ids=[tenant.pk])
    since = billed_since(created_at=tenant.created_at, now=now)
    return TenantCost(
        tenant_id=tenant.pk,
        slots=Decimal(slots),
        messages=Decimal(extra.get("messages", {}).get(tenant.pk, 0)),
        ai=Decimal(extra.get("ai", {}).get(tenant.pk, 0)),
        media=Decimal(extra.get("media", {}).get(tenant.pk, 0)),
        since=since,
        price_to_date=price_to_date(monthly_price=tenant.tier.monthly_price, since=since, now=now),
    )


UsageCounter = Callable[..., int]
_usage_counters: dict[str, UsageCounter] = {}


def register_usage_counter(name: str, counter: UsageCounter) -> None:
    """Apps above pooling add a usage figure (e.g. media bytes stored) to GET /api/v1/usage:
    `counter(tenant_id=)` returns a number."""
    _usage_counters[name] = counter


def tenant_usage(*, tenant: Tenant) -> dict[str, int]:
    return {name: counter(tenant_id=tenant.pk) for name, counter in _usage_counters.items()}
