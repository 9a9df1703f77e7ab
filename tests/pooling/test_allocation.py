"""Allocation under concurrency.

The race: many tenants start at once; each placement reads a slot with room
and takes a place. Without the row lock and the conditional UPDATE two
placements can both see the last free place and overbook the slot, or one
tenant's two starts can give it two live assignments. PostgreSQL runs them
truly in parallel, so the test runs there (SQLite serialises writers).
"""

from concurrent.futures import ThreadPoolExecutor

import django_rq
import pytest
from django.db import connection, connections
from django.db.models import Count

from pooling import services
from operations.models import Alert
from pooling.models import Assignment, Slot, WhatsAppSession
from tests.factories import SlotFactory, TenantFactory, tier
from tests.pooling.conftest import drain

pytestmark = pytest.mark.integration


def place_in_thread(tenant_id: int):
    from tenants.models import Tenant

    try:
        return services.place_tenant(tenant=Tenant.objects.get(pk=tenant_id))
    finally:
        connections.close_all()


@pytest.mark.postgres
def test_200_concurrent_allocations_never_overbook_and_the_201st_waits(pool_env):
    if connection.vendor != "postgresql":
        pytest.skip("real parallel transactions need PostgreSQL (CI's second run)")
    tenants = [TenantFactory() for _ in range(201)]
    ids = [t.pk for t in tenants[:200]] * 2  # every tenant twice, at once: must still be placed once

    with ThreadPoolExecutor(max_workers=24) as pool:
        list(pool.map(place_in_thread, ids))

    slots = Slot.objects.filter(tier__name="standard")
    assert slots.count() == 20
    assert all(s.used == s.capacity == 10 for s in slots)
    per_slot = dict(Assignment.objects.filter(ended_at__isnull=True).values_list("slot").annotate(n=Count("pk")))
    assert sorted(per_slot.values()) == [10] * 20
    assert Assignment.objects.filter(ended_at__isnull=True).values("tenant").distinct().count() == 200
    assert Assignment.objects.count() == 200

    late = tenants[200]
    assert services.place_tenant(tenant=late) is None
    assert WhatsAppSession.objects.get(tenant=late).placement == "waiting"
    assert Alert.objects.filter(kind="pool_full", resolved_at__isnull=True).exists()

    django_rq.get_queue("maintenance").empty()  # 20 slot provisionings: not what this test is about
    services.stop_session(tenant=tenants[0])
    drain()

    assert Assignment.objects.filter(tenant=late, ended_at__isnull=True).exists()
    assert WhatsAppSession.objects.get(tenant=late).placement == "placed"
    assert not Alert.objects.filter(kind="pool_full", resolved_at__isnull=True).exists()


def test_placement_packs_the_fullest_slot_first(pool_env):
    # given three slots with room, the fullest neither the first nor the last made
    emptier = SlotFactory(tenants=1)
    fuller = SlotFactory(tenants=6)
    middle = SlotFactory(tenants=3)

    # when five tenants are placed one after another
    placed = [services.place_tenant(tenant=TenantFactory()).slot_id for _ in range(5)]

    # then the fullest fills up first, and only then the next fullest takes one
    assert placed == [fuller.pk] * 4 + [middle.pk]
    assert [Slot.objects.get(pk=s.pk).used for s in (emptier, fuller, middle)] == [1, 10, 4]


def test_the_201st_standard_tenant_waits_and_is_placed_when_one_leaves(pool_env):
    slots = [SlotFactory() for _ in range(20)]
    placed = [TenantFactory() for _ in range(200)]
    for tenant in placed:
        services.start_session(tenant=tenant)
    late = TenantFactory()

    services.start_session(tenant=late)

    assert sum(Slot.objects.get(pk=s.pk).used for s in slots) == 200
    assert WhatsAppSession.objects.get(tenant=late).placement == "waiting"
    assert client_session(late)["placement"] == "waiting"
    django_rq.get_queue("maintenance").empty()  # session starts against the factory slots' dummy URL
    services.stop_session(tenant=placed[5])
    drain()
    assert WhatsAppSession.objects.get(tenant=late).placement == "placed"


def client_session(tenant):
    from tests.conftest import client_for

    return client_for(tenant).get("/api/v1/session").json()


def test_enterprise_tenants_each_get_a_slot_of_their_own(pool_env):
    registered = SlotFactory(tier=tier("enterprise"), capacity=1)
    first, second = TenantFactory(tier=tier("enterprise")), TenantFactory(tier=tier("enterprise"))

    a = services.place_tenant(tenant=first)
    b = services.place_tenant(tenant=second)

    assert a.slot_id == registered.pk  # a free registered slot is used before a new one is made
    assert b.slot_id != a.slot_id
    assert b.slot.capacity == 1 and b.slot.state == "provisioning"


def test_placing_a_placed_tenant_again_changes_nothing(pool_env):
    tenant = TenantFactory()
    first = services.place_tenant(tenant=tenant)
    again = services.place_tenant(tenant=tenant)

    assert first.pk == again.pk
    assert Slot.objects.get(pk=first.slot_id).used == 1


def test_a_tier_change_moves_the_session_to_the_new_tiers_pool(pool_env):
    tenant = TenantFactory()
    services.start_session(tenant=tenant)
    old = Assignment.objects.get(tenant=tenant, ended_at__isnull=True)

    services.change_tier(tenant=tenant, tier=tier("professional"))

    new = Assignment.objects.get(tenant=tenant, ended_at__isnull=True)
    old.refresh_from_db()
    assert old.end_reason == "tier_changed" and Slot.objects.get(pk=old.slot_id).used == 0
    assert new.slot.tier.name == "professional"


def test_a_static_pool_makes_no_new_slots_and_the_tenant_waits(pool_env, settings):
    settings.POOL_PROVISIONER = "static"

    assert services.place_tenant(tenant=TenantFactory()) is None
    assert not Slot.objects.exists()


def test_the_local_provisioner_refuses_when_host_memory_is_short(pool_env, settings):
    settings.POOL_LOCAL_MIN_FREE_MB = 10**9
    tenant = TenantFactory()

    services.start_session(tenant=tenant)
    drain()

    slot = Slot.objects.get()
    assert slot.state == "provisioning" and slot.pid is None and slot.provision_attempts == 1
    alert = Alert.objects.get(kind="provisioning_failed", resolved_at__isnull=True)
    assert "POOL_LOCAL_MIN_FREE_MB" in alert.message
    assert django_rq.get_queue("maintenance").scheduled_job_registry.count == 1  # retried with backoff
