"""Sandbox bridge processes started by the local provisioner: no secret on their command
line, and no signal ever sent to a pid that now belongs to another process."""

import json
import subprocess

import httpx
import psutil
import pytest

from pooling import provisioners, services
from pooling.models import Slot
from tests.factories import TenantFactory
from tests.pooling.conftest import drain
from tests.waiting import wait_until
from waplatform import launcher, pidfiles

pytestmark = pytest.mark.integration


def started_bridge() -> Slot:
    services.start_session(tenant=TenantFactory())
    drain()
    slot = Slot.objects.get()
    assert slot.state == Slot.State.READY and slot.pid
    return slot


@pytest.fixture
def unrelated_process():
    """A process of someone else, holding the pid a bridge once had (reused after a crash)."""
    process = subprocess.Popen(["sleep", "60"])
    yield psutil.Process(process.pid)
    process.kill()
    process.wait()


def gone(process: psutil.Process) -> bool:
    return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE


def write_record(path, *, pid: int, like: pidfiles.ProcessRecord) -> None:
    """A pid file naming `pid` with the recorded bridge's start time and command line."""
    path.write_text(json.dumps({"pid": pid, "create_time": like.create_time, "cmdline": list(like.cmdline)}))


def pretend_pid_was_reused(slot: Slot, process: psutil.Process) -> None:
    """The slot and its pid file still name the bridge's old pid, which `process` now has."""
    write_record(provisioners.pid_file(slot.pk), pid=process.pid, like=pidfiles.read(provisioners.pid_file(slot.pk)))
    Slot.objects.filter(pk=slot.pk).update(pid=process.pid)
    slot.refresh_from_db()


def test_a_started_bridge_has_no_secret_on_its_command_line(pool_env):
    slot = started_bridge()

    argv = psutil.Process(slot.pid).cmdline()
    with_key = httpx.get(f"{slot.base_url}/api/sessions", headers={"X-Api-Key": slot.api_key}, timeout=5)
    without = httpx.get(f"{slot.base_url}/api/sessions", timeout=5)

    assert "pooling.bridges.sandbox" in " ".join(argv)
    assert not any(slot.api_key in part for part in argv), argv
    assert not any(slot.webhook_secret in part for part in argv), argv
    assert with_key.status_code == 200 and without.status_code == 401  # it got the key all the same


def test_retiring_a_slot_stops_its_own_bridge(pool_env):
    slot = started_bridge()
    process = psutil.Process(slot.pid)

    provisioners.stop_local_process(slot)

    wait_until(lambda: gone(process), message="the bridge to stop")
    assert not provisioners.pid_file(slot.pk).exists()


def test_a_reused_pid_is_never_signalled_nor_taken_for_the_bridge(pool_env, unrelated_process):
    slot = started_bridge()
    bridge = psutil.Process(slot.pid)
    bridge.kill()
    wait_until(lambda: gone(bridge), message="the bridge to die")
    pretend_pid_was_reused(slot, unrelated_process)

    alive = provisioners.local_process_alive(slot)
    provisioners.stop_local_process(slot)

    assert not alive
    assert not gone(unrelated_process)


def test_the_launchers_clean_up_leaves_reused_pids_alone(pool_env, unrelated_process, monkeypatch):
    slot = started_bridge()
    other = Slot.objects.create(name="other", tier=slot.tier, dialect=slot.dialect, provisioner=slot.provisioner,
                                base_url="http://127.0.0.1:9", capacity=1, state=Slot.State.READY)
    # A pid file of a crashed run whose pid another process has now.
    write_record(provisioners.pid_file(other.pk), pid=unrelated_process.pid,
                 like=pidfiles.read(provisioners.pid_file(slot.pk)))
    # And one from an older version: a bare pid says nothing about which process it was.
    (provisioners.run_dir() / "slot-legacy.pid").write_text(str(unrelated_process.pid))
    bridge = psutil.Process(slot.pid)
    monkeypatch.setenv("WAP_VAR_DIR", str(pool_env))

    launcher._stop_local_bridge_workers(timeout=5)

    wait_until(lambda: gone(bridge), message="the genuine bridge to stop")
    assert not gone(unrelated_process)
    assert list(provisioners.run_dir().glob("*.pid")) == []
