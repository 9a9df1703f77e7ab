"""What other apps may call in pooling (DESIGN.md: apps talk through services)."""

from __future__ import annotations

import secrets

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from pooling.allocation import place_tenant, release_tenant  # noqa: F401
from pooling.bridges.base import BridgeError
from pooling.bridging import bridge_for_slot
from pooling.costs import TenantCost, tenant_cost_month_to_date, tenant_usage  # noqa: F401
from pooling.health import drain_slot, fail_over_slot, retire_slot, run_health_checks  # noqa: F401
from pooling.takeback import take_back_local_slots  # noqa: F401
from pooling.webhook_routes import tenant_for_webhook  # noqa: F401
from pooling.models import Assignment, CloudNumber, Slot, WhatsAppSession  # noqa: F401
from pooling.numbers import (  # noqa: F401
    NumberError,
    NumberInUse,
    NumberNotAssigned,
    NumberTaken,
    assign_number,
    claim_number_with_token,
    release_number,
    session_for_phone_number_id,
)
from pooling.optimizer import cleanup_idle_sessions, optimize_pools, take_snapshots  # noqa: F401
from pooling.sessions import (  # noqa: F401
    NoSession,
    SendingSession,
    SessionError,
    SessionNotReady,
    get_sending_session,
    has_wanted_session,
    logout_session,
    media_session,
    read_session,
    record_session_status,
    session_for_webhook,
    start_session,
    start_sessions,
    schedule_start,
    stop_session,
    touch_session_activity,
)
from tenants.models import Tenant, Tier
from waplatform.queues import enqueue_on_commit


class SlotUnreachable(Exception):
    pass


def register_static_slot(
    *, dialect: str, base_url: str, api_key: str, tier: Tier, capacity: int, name: str = ""
) -> Slot:
    """An operator's bridge server. Checked at once: ready when it answers, refused otherwise."""
    slot = Slot(
        name=name,
        tier=tier,
        dialect=dialect,
        provisioner=Slot.Provisioner.STATIC,
        base_url=base_url.rstrip("/"),
        api_key=api_key,
        capacity=capacity,
        state=Slot.State.PROVISIONING,
        webhook_secret=secrets.token_hex(32),
    )
    slot.full_clean(exclude=["webhook_secret"])
    try:
        with bridge_for_slot(slot, timeout=10) as bridge:
            bridge.ping()
    except BridgeError as exc:
        raise SlotUnreachable(f"{base_url} did not answer as a {dialect} bridge: {exc}") from exc
    now = timezone.now()
    with transaction.atomic():
        slot.state = Slot.State.READY
        slot.state_changed_at = now
        slot.last_health_at = now
        slot.empty_since = now
        slot.save()
        if not slot.name:
            slot.name = slot.default_name()
            slot.save(update_fields=["name"])
        enqueue_on_commit("pooling.jobs.place_waiting_tenants", tier.pk, queue="maintenance")
    return slot


# What an operator may edit on a slot; `used` and `state` belong to allocation and health.
SLOT_SETTINGS = frozenset({"name", "tier", "dialect", "provisioner", "base_url", "api_key", "capacity"})


@transaction.atomic
def update_slot(*, slot_id: int, changes: dict[str, object]) -> Slot:
    """Apply an operator's edit of a slot's settings, writing only those columns.

    Takes the slot's row lock, so the edit cannot interleave with a placement or
    a release changing `used`. Lock order, everywhere: tenant before slot, slots
    in pk order; this takes one slot and no tenant, so it cannot deadlock with them.
    """
    unknown = set(changes) - SLOT_SETTINGS
    if unknown:
        raise ValueError(f"not a slot setting: {', '.join(sorted(unknown))}")
    slot = Slot.objects.select_for_update(of=("self",)).get(pk=slot_id)
    for name, value in changes.items():
        setattr(slot, name, value)
    if slot.capacity < slot.used:
        raise ValidationError({"capacity": f"{slot.used} tenants are on this slot; move some first."})
    slot.full_clean(exclude=["webhook_secret"])
    if changes:
        slot.save(update_fields=sorted(changes))
    return slot


@transaction.atomic
def change_tier(*, tenant: Tenant, tier: Tier) -> Tenant:
    """Move a tenant to another tier; its session moves to the new tier's pool."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.tier_id == tier.pk:
        return tenant
    tenant.tier = tier
    tenant.save(update_fields=["tier"])
    if release_tenant(tenant=tenant, reason=Assignment.EndReason.TIER_CHANGED) is not None:
        session = WhatsAppSession.objects.get(tenant=tenant)
        if session.wanted and place_tenant(tenant=tenant) is not None:
            schedule_start(session_id=session.pk)
    return tenant

