"""A restart takes back the platform's own local slots: the same Slot rows get new bridge
processes, instead of being found dead, replaced by new slots and left behind with alerts."""

import os
import signal

import psutil
import pytest
from django.core.management import call_command

from operations.models import Alert
from pooling import provisioners, services
from pooling.models import Slot
from tests.factories import TenantFactory
from tests.pooling.conftest import drain
from tests.pooling.test_failover import all_working, health_cycle, working_on_worker
from tests.waiting import wait_until
from waplatform import launcher

pytestmark = pytest.mark.integration


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def working_pool(n: int) -> tuple[list, Slot]:
    tenants = [TenantFactory() for _ in range(n)]
    for tenant in tenants:
        services.start_session(tenant=tenant)
    drain()
    wait_until(lambda: health_cycle() and all_working(tenants), message="the sessions to work")
    return tenants, Slot.objects.get()


def test_after_a_restart_the_same_slot_runs_again_with_its_tenants(pool_env, monkeypatch):
    # given a slot with working sessions, whose bridge the launcher stopped along with the platform
    tenants, slot = working_pool(2)
    old_pid = slot.pid
    monkeypatch.setenv("WAP_VAR_DIR", str(pool_env))
    launcher._stop_local_bridge_workers(timeout=5)
    wait_until(lambda: gone(old_pid), message="the old bridge to stop")

    # when the platform starts again (the launcher runs the command before any worker)
    call_command("take_back_local_slots")
    drain()

    # then the same slot has a new process, hosting the same tenants' sessions again
    slot.refresh_from_db()
    assert slot.state == "ready" and slot.pid != old_pid and provisioners.local_process_alive(slot)
    wait_until(lambda: working_on_worker(slot) == 2, message="the sessions to work on the new process")
    report = health_cycle()
    assert report.down == [] and report.failed_over == 0
    assert all_working(tenants)
    assert Slot.objects.count() == 1
    assert not Alert.objects.filter(kind="slot_down", resolved_at__isnull=True).exists()


def test_a_slot_found_down_is_taken_back_and_its_alert_resolved(pool_env):
    # given a slot whose bridge was killed -9 and that a health check then marked down (its alert open)
    tenants, slot = working_pool(1)
    os.kill(slot.pid, signal.SIGKILL)
    wait_until(lambda: not provisioners.local_process_alive(slot), message="the bridge to die")
    health_cycle()
    slot.refresh_from_db()
    assert slot.state == "down"
    assert Alert.objects.filter(kind="slot_down", key=str(slot.pk), resolved_at__isnull=True).exists()

    # when the platform takes its slots back
    report = services.take_back_local_slots()

    # then the slot is ready on a new process, and the alert no longer open
    slot.refresh_from_db()
    assert str(slot) in report.taken_back
    assert slot.state == "ready" and provisioners.local_process_alive(slot)
    assert not Alert.objects.filter(kind="slot_down", key=str(slot.pk), resolved_at__isnull=True).exists()


def test_a_dead_bridges_pid_file_is_removed_by_the_next_health_check(pool_env):
    # given a bridge killed -9: its pid file names a process that is gone
    _, slot = working_pool(1)
    pid_file = provisioners.pid_file(slot.pk)
    os.kill(slot.pid, signal.SIGKILL)
    wait_until(lambda: not provisioners.local_process_alive(slot), message="the bridge to die")
    assert pid_file.exists()

    # when the health check runs
    health_cycle()

    # then the pid file is gone, and a live bridge's is kept
    assert not pid_file.exists()
    assert all(provisioners.pid_file(s.pk).exists() for s in Slot.objects.filter(state="ready"))


def test_bridges_stopped_by_a_stopping_launcher_are_not_failed_over(pool_env):
    """The launcher stops its bridges before its workers; a health check in between took every
    local slot for dead, failed its tenants over and provisioned new slots on the way out."""
    # given a working slot, and a launcher that has begun stopping (its bridges are going)
    tenants, slot = working_pool(1)
    provisioners.stopping_marker().touch()
    os.kill(slot.pid, signal.SIGTERM)
    wait_until(lambda: not provisioners.local_process_alive(slot), message="the bridge to stop")

    # when a health check runs before the workers stop
    report = health_cycle()

    # then nothing is failed over, provisioned or alerted
    slot.refresh_from_db()
    assert report.down == [] and report.failed_over == 0
    assert slot.state == "ready" and Slot.objects.count() == 1
    assert not Alert.objects.filter(kind="slot_down").exists()
