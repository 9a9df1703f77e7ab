"""Optimisation, idle retirement, warm spares, the 36 h clean-up and costs, with time passed in."""

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from pooling import services
from pooling.costs import slot_cost_by_tenant
from pooling.models import Assignment, PoolSnapshot, Slot, WhatsAppSession
from tests.factories import AssignmentFactory, SlotFactory, TenantFactory, tier
from tests.pooling.conftest import drain

pytestmark = pytest.mark.integration


def test_an_empty_shared_slot_is_retired_after_the_tiers_idle_time_not_before(pool_env):
    now = timezone.now()
    standard = SlotFactory(used=0, empty_since=now)
    professional = SlotFactory(tier=tier("professional"), used=0, empty_since=now)

    early = services.optimize_pools(now=now + timedelta(minutes=14))
    mid = services.optimize_pools(now=now + timedelta(minutes=16))
    late = services.optimize_pools(now=now + timedelta(minutes=31))

    assert early.retired == []
    assert mid.retired == [str(professional)]
    assert late.retired == [str(standard)]
    assert Slot.objects.get(pk=standard.pk).state == "retired"


def test_a_local_enterprise_slot_goes_when_its_tenant_leaves(pool_env):
    tenant = TenantFactory(tier=tier("enterprise"))
    services.start_session(tenant=tenant)
    drain()
    slot = Slot.objects.get(tier__name="enterprise")

    services.stop_session(tenant=tenant)
    drain()
    report = services.optimize_pools()

    assert report.retired == [str(slot)]


def test_a_pool_above_80_percent_keeps_a_warm_spare(pool_env):
    busy = SlotFactory(used=9)  # 90% of the standard pool's capacity

    report = services.optimize_pools()

    assert report.spares == ["standard"]
    spare = Slot.objects.exclude(pk=busy.pk).get()
    assert (spare.used, spare.state) == (0, "provisioning")
    # Not retired while the pool stays busy, even past the idle time:
    Slot.objects.filter(pk=spare.pk).update(state="ready", empty_since=timezone.now() - timedelta(hours=2))
    assert services.optimize_pools().retired == []


def test_nearly_empty_slots_are_packed_into_fuller_ones(pool_env):
    fuller = SlotFactory(tenants=6)
    sparse = SlotFactory(tenants=1)
    lonely = Assignment.objects.get(slot=sparse)

    report = services.optimize_pools()

    assert len(report.moved) == 1 and lonely.tenant.slug in report.moved[0]
    assert Assignment.objects.get(tenant=lonely.tenant, ended_at__isnull=True).slot_id == fuller.pk
    assert Slot.objects.get(pk=sparse.pk).used == 0


def test_sessions_idle_36_hours_are_stopped_and_placed_again_on_next_use(pool_env):
    idle, active = TenantFactory(), TenantFactory()
    for tenant in (idle, active):
        services.start_session(tenant=tenant)
    WhatsAppSession.objects.filter(tenant=idle).update(last_activity_at=timezone.now() - timedelta(hours=37))

    stopped = services.cleanup_idle_sessions()

    assert stopped == [idle.slug]
    assert not Assignment.objects.filter(tenant=idle, ended_at__isnull=True).exists()
    assert Assignment.objects.filter(tenant=active, ended_at__isnull=True).exists()
    with pytest.raises(services.SessionNotReady):
        services.get_sending_session(tenant=idle)  # a send brings it back
    assert Assignment.objects.filter(tenant=idle, ended_at__isnull=True).exists()


def test_snapshots_record_each_pools_utilisation(pool_env):
    SlotFactory(used=5)

    services.take_snapshots()

    snap = PoolSnapshot.objects.get(tier__name="standard")
    assert (snap.capacity, snap.used, snap.utilisation) == (10, 5, 50.0)
    assert snap.slots_by_state == {"ready": 1}


def test_a_tenant_pays_its_share_of_a_slot_it_shared_for_part_of_the_month(db):
    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    slot = SlotFactory()  # standard: 0.04 per hour
    alice = AssignmentFactory(slot=slot, started_at=start, ended_at=start + timedelta(hours=20)).tenant
    bob = AssignmentFactory(slot=slot, started_at=start + timedelta(hours=10), ended_at=start + timedelta(hours=30)).tenant

    costs = slot_cost_by_tenant(start=start, end=start + timedelta(hours=40))

    # Alice: 10 h alone + 10 h shared; Bob: 10 h shared + 10 h alone.
    assert costs[alice.pk] == Decimal("0.6000")
    assert costs[bob.pk] == Decimal("0.6000")
    assert services.tenant_cost_month_to_date(tenant=alice, now=start + timedelta(hours=40)).slots == Decimal("0.6000")


def test_commands_print_what_they_changed(pool_env):
    SlotFactory(used=7)
    out = StringIO()

    call_command("pool_status", "--slots", stdout=out)
    call_command("pool_optimize", stdout=out)
    call_command("cleanup_sessions", stdout=out)
    text = out.getvalue()

    assert "standard" in text and "70.0" in text  # the status table: 7 of 10 used
    assert "nothing to change" in text  # 70% needs no spare, nothing to pack or retire
    assert "0 session(s) idle over 36 h stopped" in text


def test_add_slot_checks_the_server_and_drain_slot_moves_tenants(pool_env, spawn_sandbox):
    worker = spawn_sandbox(capacity=10)
    out = StringIO()
    call_command("add_slot", "--dialect", "sandbox", "--url", worker.base_url, "--api-key", worker.api_key,
                 "--tier", "standard", "--capacity", "10", stdout=out)
    slot = Slot.objects.get(provisioner="static")
    assert slot.state == "ready" and f"added slot {slot}" in out.getvalue()

    tenant = TenantFactory()
    services.start_session(tenant=tenant)
    drain()
    out = StringIO()
    call_command("drain_slot", str(slot.pk), stdout=out)

    assert f"drained {slot}: moved 1 tenant(s); slot is retired" in out.getvalue()
    assert Assignment.objects.get(tenant=tenant, ended_at__isnull=True).slot_id != slot.pk


def test_add_slot_refuses_a_server_that_does_not_answer(db):
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="did not answer"):
        call_command("add_slot", "--dialect", "waha", "--url", "http://127.0.0.1:9", "--api-key", "k",
                     "--tier", "standard", "--capacity", "10")
    assert not Slot.objects.exists()


def test_a_periodic_cycle_is_skipped_while_the_previous_one_still_runs(db):
    from pooling import jobs
    from waplatform.redis import get_redis

    held = get_redis().lock("wap:single-flight:pool health check", timeout=60)
    assert held.acquire(blocking=False)

    skipped = jobs.run_health_checks()
    held.release()
    ran = jobs.run_health_checks()

    assert skipped == ["skipped: the previous health check is still running"]
    assert ran == ["checked 0 slot(s): 0 healthy"]
