"""What other apps may call in pooling (DESIGN.md: apps talk through services)."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from pooling.alerts import raise_alert, resolve_alert  # noqa: F401
from pooling.allocation import place_tenant, release_tenant  # noqa: F401
from pooling.bridges.base import BridgeError
from pooling.bridging import bridge_for_slot
from pooling.costs import TenantCost, tenant_cost_month_to_date  # noqa: F401
from pooling.health import drain_slot, fail_over_slot, retire_slot, run_health_checks  # noqa: F401
from pooling.models import Assignment, Slot, WhatsAppSession
from pooling.optimizer import cleanup_idle_sessions, optimize_pools, take_snapshots  # noqa: F401
from pooling.sessions import (  # noqa: F401
    NoSession,
    SendingSession,
    SessionError,
    SessionNotReady,
    get_sending_session,
    has_wanted_session,
    logout_session,
    read_session,
    record_session_status,
    session_for_phone_number_id,
    session_for_webhook,
    start_session,
    stop_session,
    touch_session_activity,
)
from tenants.models import Tenant, Tier


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
            slot.name = f"{tier.name}-{slot.pk}"
            slot.save(update_fields=["name"])
        from waplatform.queues import enqueue_on_commit

        enqueue_on_commit("pooling.jobs.place_waiting_tenants", tier.pk, queue="maintenance")
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
            from pooling.sessions import schedule_start

            schedule_start(session_id=session.pk)
    return tenant

