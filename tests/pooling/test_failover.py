import os
import signal

import httpx

import pytest

from pooling import services
from pooling.provisioners import local_process_alive
from operations.models import Alert
from pooling.models import Assignment, Slot, WhatsAppSession
from tests.factories import TenantFactory
from tests.pooling.conftest import drain
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def all_working(tenants) -> bool:
    return all(WhatsAppSession.objects.get(tenant=t).status == "WORKING" for t in tenants)


def working_on_worker(slot: Slot) -> int:
    """Sessions the slot's worker process itself reports WORKING (asked directly, not through the platform)."""
    sessions = httpx.get(f"{slot.base_url}/api/sessions", headers={"X-Api-Key": slot.api_key}, timeout=5).json()
    return sum(s["status"] == "WORKING" for s in sessions)


def health_cycle():
    """What the cron does every 30 s, and the maintenance worker that runs what it enqueues."""
    report = services.run_health_checks()
    drain()
    return report


def test_a_killed_worker_fails_over_and_its_tenants_work_again_within_two_health_cycles(pool_env):
    tenants = [TenantFactory() for _ in range(3)]
    for tenant in tenants:
        services.start_session(tenant=tenant)
    drain()
    wait_until(lambda: health_cycle() and all_working(tenants))
    dead = Slot.objects.get()
    assert dead.used == 3

    os.kill(dead.pid, signal.SIGKILL)
    wait_until(lambda: not local_process_alive(dead))
    first = health_cycle()  # down; tenants placed on a new slot, which comes up with their sessions
    new = Slot.objects.exclude(pk=dead.pk).get()
    wait_until(lambda: working_on_worker(new) == 3, message="the new worker's simulated QR scans")
    health_cycle()  # reads them WORKING

    assert first.down == [str(dead)] and first.failed_over == 3
    assert all_working(tenants)

    dead.refresh_from_db()
    assert dead.state == "down" and dead.used == 0
    live = Assignment.objects.filter(tenant__in=tenants, ended_at__isnull=True)
    assert live.count() == 3 and not live.filter(slot=dead).exists()
    assert Assignment.objects.filter(slot=dead, end_reason="failover").count() == 3
    assert Alert.objects.filter(kind="slot_down", key=str(dead.pk), resolved_at__isnull=True).exists()


def slot_answering_503s(count: int) -> Slot:
    """A tenant's live local slot whose worker process lives but answers 503 to the next `count` calls."""
    services.start_session(tenant=TenantFactory())
    drain()
    slot = Slot.objects.get()
    httpx.post(f"{slot.base_url}/sandbox/faults", json={"error_status": 503, "error_count": count},
               headers={"X-Api-Key": slot.api_key}, timeout=5).raise_for_status()
    return slot


def test_a_failing_slot_degrades_then_goes_down_after_three_failures(pool_env):
    slot = slot_answering_503s(100)

    states = []
    for _ in range(3):
        services.run_health_checks(slot_ids=[slot.pk])
        slot.refresh_from_db()
        states.append(slot.state)

    assert states == ["degraded", "degraded", "down"]
    assert not Assignment.objects.filter(slot=slot, ended_at__isnull=True).exists()


def test_a_stopped_then_recovered_slot_comes_back_ready(pool_env):
    slot = slot_answering_503s(1)
    services.run_health_checks(slot_ids=[slot.pk])
    slot.refresh_from_db()
    assert slot.state == "degraded"

    services.run_health_checks(slot_ids=[slot.pk])
    slot.refresh_from_db()
    assert slot.state == "ready" and slot.consecutive_failures == 0
