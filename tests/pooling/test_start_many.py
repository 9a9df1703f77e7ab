"""Starting many sessions at once (start_sessions): placed in bulk per slot, started per slot.

What must hold as for one-by-one starts: no slot holds more than its capacity,
every tenant has exactly one live assignment, a tenant already placed is not
placed again, and every session ends up WORKING on the worker it was given.
"""

import pytest
from django.db.models import Count

from pooling import services
from pooling.models import Assignment, Slot, WhatsAppSession
from tests.factories import TenantFactory
from tests.pooling.conftest import drain
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def health_cycle():
    report = services.run_health_checks()
    drain()
    return report


def test_twenty_five_tenants_started_at_once_fill_three_slots_without_overbooking_and_all_work(pool_env):
    # given: 25 standard tenants (10 per slot), 4 of them already started one by one
    tenants = [TenantFactory() for _ in range(25)]
    for tenant in tenants[:4]:
        services.start_session(tenant=tenant)

    # when: all 25 are started together, twice
    services.start_sessions(tenants=tenants)
    services.start_sessions(tenants=tenants)
    drain()

    # then: one live assignment each, on 3 slots, none above capacity
    live = Assignment.objects.filter(ended_at__isnull=True)
    assert live.count() == 25 and live.values("tenant").distinct().count() == 25
    per_slot = dict(live.values_list("slot").annotate(n=Count("pk")))
    slots = Slot.objects.filter(pk__in=per_slot)
    assert len(per_slot) == 3
    assert all(slot.used == per_slot[slot.pk] <= slot.capacity for slot in slots)
    assert all(WhatsAppSession.objects.get(tenant=t).wanted for t in tenants)
    # and every session runs
    wait_until(lambda: health_cycle() and WhatsAppSession.objects.filter(status="WORKING").count() == 25,
               message="25 sessions WORKING")
