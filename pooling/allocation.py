"""Placing tenants' sessions on slots without ever overbooking one.

The invariant `used <= capacity` is kept three ways: candidate slots are
locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite serialises writers with
BEGIN IMMEDIATE), `used` is bumped by a conditional UPDATE that re-checks
room, and a CHECK constraint refuses anything that slips past both. A tenant
has one live assignment (partial unique index), and its own row is locked
while it is placed so two starts for one tenant cannot race.
"""

from __future__ import annotations

import secrets

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from pooling import hosts, provisioners
from pooling.models import Assignment, SessionEvent, Slot, WhatsAppSession
from tenants.models import Tenant, Tier
from waplatform import alerts
from waplatform.alerts import AlertKind
from waplatform.queues import enqueue_on_commit

CLAIM_ATTEMPTS = 8


def session_name_for(tenant: Tenant) -> str:
    return f"t{tenant.pk}"


def get_or_create_session(tenant: Tenant) -> WhatsAppSession:
    session, _ = WhatsAppSession.objects.get_or_create(tenant=tenant, defaults={"name": session_name_for(tenant)})
    return session


def live_assignment(tenant: Tenant) -> Assignment | None:
    return Assignment.objects.select_related("slot").filter(tenant=tenant, ended_at__isnull=True).first()


def _dialects_for(session: WhatsAppSession) -> list[str]:
    # A Cloud API number can only live where the Cloud dialect is spoken.
    if session.phone_number_id:
        return [Slot.Dialect.CLOUD, Slot.Dialect.SANDBOX]
    return [Slot.Dialect.WAHA, Slot.Dialect.SANDBOX]


def _claim_room(tier: Tier, dialects: list[str], exclude_slot_ids: list[int]) -> Slot | None:
    """Take one place on the fullest slot of `tier` that has room (packing keeps cost down)."""
    for _ in range(CLAIM_ATTEMPTS):
        candidate = (
            Slot.objects.select_for_update(of=("self",))
            .filter(tier=tier, state__in=Slot.PLACEABLE_STATES, used__lt=F("capacity"), dialect__in=dialects)
            .exclude(pk__in=exclude_slot_ids)
            .order_by("-used", "pk")
            .first()
        )
        if candidate is None:
            return None
        claimed = Slot.objects.filter(pk=candidate.pk, used__lt=F("capacity")).update(
            used=F("used") + 1, empty_since=None
        )
        if claimed:
            candidate.refresh_from_db()
            return candidate
    return None


def provision_new_slot(tier: Tier, *, holding: int = 1) -> Slot | None:
    """A new slot for `tier`, born holding `holding` places (0 for a warm spare), if the pool
    may grow. Must run inside a transaction (it locks the tier row)."""
    if not provisioners.can_provision_new_slots():
        return None
    # The tier row is the lock that keeps concurrent placements from each
    # deciding the pool has room for one more slot.
    Tier.objects.select_for_update().get(pk=tier.pk)
    live = Slot.objects.filter(tier=tier, state__in=Slot.LIVE_STATES).count()
    if tier.max_slots is not None and live >= tier.max_slots:
        return None
    slot = Slot.objects.create(
        tier=tier,
        dialect=Slot.Dialect.SANDBOX,
        provisioner=Slot.Provisioner.LOCAL,
        capacity=tier.tenants_per_slot,
        used=holding,
        api_key=secrets.token_hex(24),
        state=Slot.State.PROVISIONING,
        empty_since=None if holding else timezone.now(),
        host=hosts.choose_host(),
    )
    slot.name = slot.default_name()
    slot.save(update_fields=["name"])

    enqueue_on_commit("pooling.jobs.provision_slot", slot.pk, queue=hosts.queue_for(slot))
    return slot


@transaction.atomic
def place_tenant(*, tenant: Tenant, exclude_slot_ids: list[int] | None = None) -> Assignment | None:
    """Put the tenant's session on a slot of its tier; None when the pool is full (it waits).

    Idempotent: a tenant already placed keeps its assignment.
    """
    tenant = Tenant.objects.select_for_update(of=("self",)).select_related("tier").get(pk=tenant.pk)
    existing = live_assignment(tenant)
    if existing:
        return existing
    session = get_or_create_session(tenant)
    tier = tenant.tier
    slot = _claim_room(tier, _dialects_for(session), exclude_slot_ids or []) or provision_new_slot(tier)
    now = timezone.now()
    if slot is None:
        if session.placement != WhatsAppSession.Placement.WAITING:
            session.placement = WhatsAppSession.Placement.WAITING
            session.waiting_since = now
            session.save(update_fields=["placement", "waiting_since"])
        alerts.raise_alert(
            kind=AlertKind.POOL_FULL,
            key=tier.name,
            message=f"The {tier.name} pool is full; tenants are waiting for a slot.",
        )
        return None
    assignment = Assignment.objects.create(tenant=tenant, slot=slot, started_at=now)
    session.placement = WhatsAppSession.Placement.PLACED
    session.waiting_since = None
    session.save(update_fields=["placement", "waiting_since"])
    session.events.create(status=session.status, slot=slot, note=f"placed on {slot}")
    return assignment


def place_many(*, tenants: list[Tenant]) -> dict[int, list[int]]:
    """Place many tenants at once: {slot id: [session ids placed on it]}. Must run inside a transaction.

    Per tier, each slot with room (fullest first, as place_tenant packs) takes as
    many as it holds with one conditional UPDATE, and the assignments, session
    rows and history are written in bulk: a fleet start is a few statements per
    slot, not a locked transaction per tenant. Tenants already placed are left as
    they are; Cloud numbers and those no slot has room for are placed one by one
    (place_tenant: dialect rules, a new slot, the waiting list and its alert).
    """
    tenants = list(Tenant.objects.select_for_update(of=("self",)).select_related("tier")
                   .filter(pk__in=[t.pk for t in tenants]).order_by("pk"))
    placed_already = set(Assignment.objects.filter(tenant__in=tenants, ended_at__isnull=True)
                         .values_list("tenant_id", flat=True))
    sessions = {s.tenant_id: s for s in WhatsAppSession.objects.filter(tenant__in=tenants)}
    out: dict[int, list[int]] = {}
    one_by_one: list[Tenant] = []
    by_tier: dict[int, list[Tenant]] = {}
    for tenant in tenants:
        session = sessions.get(tenant.pk)
        if tenant.pk in placed_already or session is None:
            continue
        if session.phone_number_id:
            one_by_one.append(tenant)
        else:
            by_tier.setdefault(tenant.tier_id, []).append(tenant)
    now = timezone.now()
    for tier_tenants in by_tier.values():
        tier = tier_tenants[0].tier
        left = tier_tenants
        slots = (Slot.objects.select_for_update(of=("self",))
                 .filter(tier=tier, state__in=Slot.PLACEABLE_STATES, used__lt=F("capacity"),
                         dialect__in=[Slot.Dialect.WAHA, Slot.Dialect.SANDBOX])
                 .order_by("-used", "pk"))
        for slot in slots:
            if not left:
                break
            take = min(slot.capacity - slot.used, len(left))
            if take <= 0 or not Slot.objects.filter(pk=slot.pk, used__lte=F("capacity") - take).update(
                    used=F("used") + take, empty_since=None):
                continue
            batch, left = left[:take], left[take:]
            Assignment.objects.bulk_create([Assignment(tenant=t, slot=slot, started_at=now) for t in batch])
            ids = [sessions[t.pk].pk for t in batch]
            WhatsAppSession.objects.filter(pk__in=ids).update(
                placement=WhatsAppSession.Placement.PLACED, waiting_since=None)
            SessionEvent.objects.bulk_create([SessionEvent(session_id=sessions[t.pk].pk, status=sessions[t.pk].status,
                                                           slot=slot, note=f"placed on {slot}") for t in batch])
            out.setdefault(slot.pk, []).extend(ids)
        one_by_one.extend(left)
    for tenant in one_by_one:
        assignment = place_tenant(tenant=tenant)
        if assignment is not None:
            out.setdefault(assignment.slot_id, []).append(sessions[tenant.pk].pk)
    return out


@transaction.atomic
def release_tenant(*, tenant: Tenant, reason: str) -> Assignment | None:
    """End the tenant's live assignment and give its place back."""
    assignment = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("slot__tier")
        .filter(tenant=tenant, ended_at__isnull=True)
        .first()
    )
    if assignment is None:
        return None
    now = timezone.now()
    assignment.ended_at = now
    assignment.end_reason = reason
    assignment.save(update_fields=["ended_at", "end_reason"])
    Slot.objects.filter(pk=assignment.slot_id, used__gt=0).update(used=F("used") - 1)
    slot = Slot.objects.get(pk=assignment.slot_id)
    if slot.used == 0:
        slot.empty_since = now
        slot.save(update_fields=["empty_since"])
    WhatsAppSession.objects.filter(tenant=tenant).update(placement=WhatsAppSession.Placement.UNPLACED)

    enqueue_on_commit("pooling.jobs.place_waiting_tenants", slot.tier_id, queue="maintenance")
    return assignment
