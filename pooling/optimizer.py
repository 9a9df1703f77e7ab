"""The pool's 5-minute housekeeping: pack, retire idle slots, keep a warm spare, snapshot.

Time comes in as `now` so tests can move it instead of sleeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from pooling import allocation, health, provisioners, sessions
from pooling.models import Assignment, PoolSnapshot, Slot, WhatsAppSession
from pooling.selectors import pool_statuses
from tenants.models import Tier


@dataclass
class OptimizeReport:
    moved: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    spares: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"moved {t}" for t in self.moved] + [f"retired slot {s}" for s in self.retired]
        out += [f"provisioning warm spare for {t}" for t in self.spares]
        return out or ["nothing to change"]


def _pack(tier: Tier, report: OptimizeReport) -> None:
    """Empty the least-used slots into fuller ones when the others have room for all their tenants."""
    if tier.tenants_per_slot == 1:
        return
    ready = list(Slot.objects.filter(tier=tier, state=Slot.State.READY).order_by("used", "pk"))
    threshold = max(1, math.floor(tier.tenants_per_slot * settings.POOL_PACK_BELOW))
    for source in ready:
        source.refresh_from_db()
        if source.used == 0 or source.used > threshold:
            continue
        others = Slot.objects.filter(tier=tier, state=Slot.State.READY, dialect=source.dialect).exclude(pk=source.pk)
        room = sum(s.free for s in others)
        if room < source.used:
            continue
        for assignment in Assignment.objects.select_related("tenant").filter(slot=source, ended_at__isnull=True):
            with transaction.atomic():
                allocation.release_tenant(tenant=assignment.tenant, reason=Assignment.EndReason.REBALANCED)
                session = WhatsAppSession.objects.filter(tenant=assignment.tenant).first()
                new = allocation.place_tenant(tenant=assignment.tenant, exclude_slot_ids=[source.pk])
                if new and session and session.wanted:
                    sessions.schedule_start(session_id=session.pk)
            report.moved.append(f"{assignment.tenant.slug}: {source} -> {new.slot if new else 'waiting'}")


def _utilisation(tier: Tier) -> float:
    """How full the slots that hold tenants are; empty spares do not dilute it, or a
    spare would make the pool look quiet enough to retire that same spare."""
    totals = Slot.objects.filter(tier=tier, state__in=Slot.PLACEABLE_STATES, used__gt=0).aggregate(
        capacity=Sum("capacity"), used=Sum("used")
    )
    return (totals["used"] or 0) / totals["capacity"] if totals["capacity"] else 0.0


def _needs_spare(tier: Tier) -> bool:
    return (
        tier.tenants_per_slot > 1
        and _utilisation(tier) > settings.POOL_WARM_SPARE_ABOVE
        and not Slot.objects.filter(tier=tier, state__in=Slot.PLACEABLE_STATES, used=0).exists()
    )


def _retire_idle(tier: Tier, now: datetime, report: OptimizeReport) -> None:
    timeout = timedelta(minutes=tier.idle_slot_timeout_minutes or 0)
    empty = Slot.objects.filter(tier=tier, state__in=[Slot.State.READY, Slot.State.DEGRADED], used=0)
    if tier.idle_slot_timeout_minutes is None:
        # Dedicated slots made for one tenant go when it leaves; registered ones stay for the next.
        empty = empty.filter(provisioner=Slot.Provisioner.LOCAL)
    spare_kept = False
    for slot in empty.order_by("pk"):
        if slot.empty_since is None or now - slot.empty_since < timeout:
            continue
        if not spare_kept and _utilisation(tier) > settings.POOL_WARM_SPARE_ABOVE and tier.tenants_per_slot > 1:
            spare_kept = True  # the pool is busy: this empty slot is its warm spare
            continue
        if health.retire_slot(slot_id=slot.pk):
            report.retired.append(str(slot))


def _provision_spare(tier: Tier, report: OptimizeReport) -> None:
    if not _needs_spare(tier) or not provisioners.can_provision_new_slots():
        return
    with transaction.atomic():
        if allocation.provision_new_slot(tier, holding=0) is None:
            return
    report.spares.append(tier.name)


def optimize_pools(*, now: datetime | None = None) -> OptimizeReport:
    now = now or timezone.now()
    report = OptimizeReport()
    for tier in Tier.objects.all():
        _pack(tier, report)
        _retire_idle(tier, now, report)
        _provision_spare(tier, report)
    return report


def cleanup_idle_sessions(*, now: datetime | None = None) -> list[str]:
    """Stop sessions with no activity for POOL_SESSION_IDLE_HOURS; they are placed again on next use."""
    now = now or timezone.now()
    cutoff = now - timedelta(hours=settings.POOL_SESSION_IDLE_HOURS)
    stopped = []
    for session in WhatsAppSession.objects.select_related("tenant").filter(wanted=True, last_activity_at__lt=cutoff):
        sessions.stop_session(tenant=session.tenant)
        # The tenant did not ask for the stop: its next send or start brings the session back.
        WhatsAppSession.objects.filter(pk=session.pk).update(wanted=True, placement=WhatsAppSession.Placement.UNPLACED)
        stopped.append(session.tenant.slug)
    return stopped


def take_snapshots(*, now: datetime | None = None) -> list[PoolSnapshot]:
    now = now or timezone.now()
    return PoolSnapshot.objects.bulk_create(
        PoolSnapshot(
            tier=pool.tier,
            taken_at=now,
            slots_by_state=pool.slots_by_state,
            capacity=pool.capacity,
            used=pool.used,
            waiting=pool.waiting,
        )
        for pool in pool_statuses()
    )
