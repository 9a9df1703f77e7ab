"""A host with only the bridges role, started before any host migrated the shared database."""

import signal

import pytest

from tests.e2e.platform import Launcher, wait_for

pytestmark = pytest.mark.integration


def test_a_bridges_only_host_waits_for_the_schema_and_a_stop_ends_the_wait(tmp_path):
    # A database of its own that nobody migrated: the web role, which migrates, runs on another host.
    launcher = Launcher(tmp_path, WAP_ROLES="bridges", WAP_HOST="bridge-early")
    try:
        wait_for(lambda: "once the schema is migrated" in launcher.output() or launcher.process.poll() is not None,
                 timeout=90, what="the launcher saying it waits for the schema")
        assert launcher.process.poll() is None, launcher.output()[-3000:]  # waiting, not crashed on the schema

        launcher.process.send_signal(signal.SIGTERM)
        code = launcher.process.wait(timeout=20)

        assert code == 0, launcher.output()[-3000:]
        assert "stopped while" in launcher.output() and "take_back_local_slots" in launcher.output()
    finally:
        launcher.close()


def test_a_bridge_no_pid_file_names_still_stops_with_the_platform(tmp_path):
    """A bridge whose spawner died before recording it (a worker killed mid-provisioning) is the run's."""
    import subprocess
    import sys

    import psutil

    from tests.e2e.platform import BASE_DIR
    from waplatform.embedded_redis import free_port
    from waplatform.launcher import RUN_MARKER

    launcher = Launcher(tmp_path)
    stray = None
    try:
        launcher.wait_ready()
        marker = launcher.child("run_worker_pool").environ()[RUN_MARKER]
        stray = subprocess.Popen([sys.executable, "-m", "pooling.bridges.sandbox", "--port", str(free_port()),
                                  "--capacity", "1"], cwd=BASE_DIR, start_new_session=True,
                                 env={**launcher.child("run_worker_pool").environ(), RUN_MARKER: marker},
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        launcher.process.send_signal(signal.SIGTERM)
        launcher.process.wait(timeout=30)

        wait_for(lambda: stray.poll() is not None, timeout=10, what="the unrecorded bridge gone")
    finally:
        if stray is not None and stray.poll() is None:
            psutil.Process(stray.pid).kill()
        launcher.close()
