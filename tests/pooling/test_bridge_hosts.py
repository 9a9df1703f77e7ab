"""Host-aware provisioning: two bridge hosts on one machine, one Redis and one database.

Each "host" is a real `manage.py run_bridge_agent` process with its own WAP_HOST,
var dir and loopback address (127.0.0.2, 127.0.0.3); this test process is a third
host that runs the health cycle as the cron's maintenance worker would. A local
slot's process is started, checked and stopped by the host it was given, never by
another: a pid means nothing on another machine.
"""

import os
import signal
import subprocess
import sys

import psutil
import pytest

from pooling import hosts, services
from pooling.models import Assignment, Slot, WhatsAppSession
from tests.factories import TenantFactory, tier
from tests.pooling.conftest import drain
from tests.processes import shared_database_url, stop_group
from tests.waiting import wait_until
from waplatform import pidfiles

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_TTL_SECONDS = 3


@pytest.fixture
def bridge_hosts(pool_env, settings):
    """start(name, address): a bridges role of its own, beating on the test's Redis."""
    settings.BRIDGE_HOST_TTL_SECONDS = HOST_TTL_SECONDS
    started: dict[str, tuple[subprocess.Popen, object]] = {}

    def start(name: str, address: str) -> None:
        var_dir = pool_env / name
        var_dir.mkdir()
        env = {
            **os.environ, "DATABASE_URL": shared_database_url(), "WAP_HOST": name, "WAP_VAR_DIR": str(var_dir),
            "BRIDGE_BIND_HOST": address, "BRIDGE_HOST_BEAT_SECONDS": "0.5",
            "BRIDGE_HOST_TTL_SECONDS": str(HOST_TTL_SECONDS), "SANDBOX_AUTO_SCAN_SECONDS": "0.3",
            # One database for every host: the keys that encrypt slot secrets are shared, not per host.
            "SECRET_KEY": settings.SECRET_KEY, "SECRETS_ENCRYPTION_KEYS": ",".join(settings.SECRETS_ENCRYPTION_KEYS),
        }
        with open(var_dir / "agent.log", "wb") as log:
            process = subprocess.Popen([sys.executable, "manage.py", "run_bridge_agent"], cwd=REPO_ROOT, env=env,
                                       start_new_session=True, stdout=log, stderr=subprocess.STDOUT)
        started[name] = (process, var_dir)
        wait_until(lambda: name in hosts.live_hosts(), timeout=90, message=f"host {name} beating")

    yield start
    for name in started:
        kill_host(started, name)


def kill_host(started, name: str) -> None:
    """The host dies: its bridges role and every bridge it started, at once."""
    process, var_dir = started[name]
    stop_group(process, signal.SIGKILL)
    for pid_file in (var_dir / "run" / "bridges").glob("*.pid"):
        bridge = pidfiles.recorded_process(pid_file)
        if bridge is not None:
            bridge.kill()


def ready_slot_of(tenant) -> Slot:
    """Waits for the tenant's slot to be started by its host, running the maintenance jobs meanwhile."""
    def ready():
        assignment = Assignment.objects.filter(tenant=tenant, ended_at__isnull=True).select_related("slot").first()
        return assignment and assignment.slot.state == Slot.State.READY and assignment.slot

    return wait_until(ready, timeout=60, step=drain, interval=0.2, message=f"{tenant}'s slot ready")


def two_slots_on_two_hosts(bridge_hosts):
    bridge_hosts("alpha", "127.0.0.2")
    bridge_hosts("beta", "127.0.0.3")
    enterprise = tier("enterprise")  # one tenant per slot: a second tenant needs a second slot
    first, second = TenantFactory(tier=enterprise), TenantFactory(tier=enterprise)
    services.start_session(tenant=first)
    on_alpha = ready_slot_of(first)
    services.start_session(tenant=second)
    on_beta = ready_slot_of(second)
    return first, second, on_alpha, on_beta


def bridges_recorded_by(var_dir) -> set[int]:
    return {pidfiles.read(p).pid for p in (var_dir / "run" / "bridges").glob("*.pid")}


def test_a_slot_given_to_host_b_is_started_there_and_its_pid_judged_only_there(bridge_hosts, pool_env):
    first, second, on_alpha, on_beta = two_slots_on_two_hosts(bridge_hosts)

    # started by the host it was given, listening on that host's address
    assert (on_alpha.host, on_beta.host) == ("alpha", "beta")
    assert on_beta.base_url.startswith("http://127.0.0.3:")
    assert bridges_recorded_by(pool_env / "beta") == {on_beta.pid}
    assert bridges_recorded_by(pool_env / "alpha") == {on_alpha.pid}
    assert not bridges_recorded_by(pool_env)  # this process (a third host) started nothing

    # beta's bridge hangs but lives: only beta may look at its pid. Judged from here, with no
    # record of that pid, it would have been "process gone" and down at once.
    bridge = psutil.Process(on_beta.pid)
    bridge.suspend()
    try:
        report = services.run_health_checks()
        on_beta.refresh_from_db()
        wait_until(lambda: Slot.objects.get(pk=on_beta.pk).consecutive_failures >= 1, timeout=60,
                   message="beta's own health check of its slot")
        checked_on_beta = Slot.objects.get(pk=on_beta.pk)
    finally:
        bridge.resume()

    assert str(on_beta) not in report.down
    assert checked_on_beta.state == Slot.State.DEGRADED
    assert "process gone" not in checked_on_beta.last_health_error

    # once its bridge is really gone, beta finds out and the slot is down at once
    bridge.kill()
    services.run_health_checks()
    wait_until(lambda: Slot.objects.get(pk=on_beta.pk).state == Slot.State.DOWN, timeout=60, step=drain,
               message="beta's slot down")
    assert Slot.objects.get(pk=on_beta.pk).last_health_error == "process gone"
    assert Slot.objects.get(pk=on_alpha.pk).state == Slot.State.READY


def test_a_bridge_host_that_dies_has_its_slots_down_and_its_tenants_moved_to_the_other(bridge_hosts):
    first, second, on_alpha, on_beta = two_slots_on_two_hosts(bridge_hosts)
    wait_until(lambda: WhatsAppSession.objects.get(tenant=second).status == "WORKING", timeout=60,
               step=lambda: (services.run_health_checks(), drain()), interval=0.5, message="second tenant WORKING")

    host_b = next(p for p in psutil.process_iter(["cmdline", "environ"])
                  if "run_bridge_agent" in " ".join(p.info["cmdline"] or [])
                  and (p.info["environ"] or {}).get("WAP_HOST") == "beta")
    os.killpg(host_b.pid, signal.SIGKILL)
    psutil.Process(on_beta.pid).kill()
    wait_until(lambda: "beta" not in hosts.live_hosts(), timeout=30, message="beta silent")

    report = services.run_health_checks()
    moved_to = ready_slot_of(second)
    wait_until(lambda: WhatsAppSession.objects.get(tenant=second).status == "WORKING", timeout=60,
               step=lambda: (services.run_health_checks(), drain()), interval=0.5,
               message="second tenant WORKING again")

    on_beta.refresh_from_db()
    assert str(on_beta) in report.down and report.failed_over == 1
    assert on_beta.state in (Slot.State.DOWN, Slot.State.RETIRED)
    assert on_beta.last_health_error.startswith("bridge host gone: beta")
    assert moved_to.host == "alpha" and moved_to.base_url.startswith("http://127.0.0.2:")
    assert Slot.objects.get(pk=on_alpha.pk).state == Slot.State.READY
