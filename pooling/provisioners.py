"""Where new slots come from.

`local` spawns sandbox bridge workers as separate processes on free ports of
BRIDGE_BIND_HOST (loopback unless the host's bridges serve other hosts), on the
host the slot was given (pooling.hosts: the job runs on that host's queue). They are detached (own session) so they outlive the job that spawned
them; pid and port are recorded on the slot, and the process (pid, start time,
command line: waplatform.pidfiles) in var/run/bridges/, so the launcher stops
them on exit and nothing ever signals a pid that was reused by another
process. The slot's API key reaches the worker in its environment, never on
its command line, which every user of the host can read (`ps`). `static` makes nothing: operators register
bridge servers (WAHA, Cloud API) with add_slot, the admin or the staff API.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from django.conf import settings

from pooling.models import Slot
from waplatform import pidfiles
from waplatform.embedded_redis import free_port


class ProvisioningError(Exception):
    pass


class ProvisioningRefused(ProvisioningError):
    """Not now, and not a fault of the slot: e.g. the host is short of memory."""


def run_dir() -> Path:
    path = settings.VAR_DIR / "run" / "bridges"
    path.mkdir(parents=True, exist_ok=True)
    return path


def log_dir() -> Path:
    path = settings.VAR_DIR / "log" / "bridges"
    path.mkdir(parents=True, exist_ok=True)
    return path


def can_provision_new_slots() -> bool:
    return settings.POOL_PROVISIONER == "local"


def provision_local_slot(slot: Slot) -> tuple[str, int, int]:
    """Start a sandbox worker for `slot`; returns (base_url, pid, port) once it answers /ping."""
    available_mb = psutil.virtual_memory().available / (1024 * 1024)
    if available_mb < settings.POOL_LOCAL_MIN_FREE_MB:
        raise ProvisioningRefused(
            f"host has {available_mb:.0f} MB free, below POOL_LOCAL_MIN_FREE_MB={settings.POOL_LOCAL_MIN_FREE_MB}"
        )
    port = free_port()
    log = open(log_dir() / f"slot-{slot.pk}.log", "ab")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "pooling.bridges.sandbox",
            "--host", settings.BRIDGE_BIND_HOST, "--port", str(port),
            # "=" form: a generated key may start with "-", which argparse would take for a flag.
            "--capacity", str(slot.capacity),
            "--auto-scan-seconds", str(settings.SANDBOX_AUTO_SCAN_SECONDS),
        ],
        cwd=settings.BASE_DIR,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}, "SANDBOX_API_KEY": slot.api_key},
    )
    log.close()
    try:
        pidfiles.record(pid_file(slot.pk), process.pid)
    except psutil.Error:
        pass  # exited already: the poll below reports it
    base_url = f"http://{settings.BRIDGE_BIND_HOST}:{port}"
    deadline = time.monotonic() + settings.POOL_PROVISION_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ProvisioningError(f"sandbox worker exited with {process.returncode}; see var/log/bridges/")
        try:
            if httpx.get(f"{base_url}/ping", timeout=1).status_code == 200:
                return base_url, process.pid, port
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.terminate()  # our own child, not yet reaped: its pid cannot have been reused
    pid_file(slot.pk).unlink(missing_ok=True)
    raise ProvisioningError(f"sandbox worker on port {port} did not answer within the provisioning timeout")


def stopping_marker() -> Path:
    """Present while the launcher stops this host's bridges (waplatform.launcher writes it by this name)."""
    return run_dir() / "stopping"


def bridges_stopping() -> bool:
    return stopping_marker().exists()


def pid_file(slot_id: int) -> Path:
    return run_dir() / f"slot-{slot_id}.pid"


def _bridge_process(slot: Slot) -> psutil.Process | None:
    """The slot's worker, if the process behind slot.pid is still the one started for it."""
    entry = pidfiles.read(pid_file(slot.pk))
    if not slot.pid or entry is None or entry.pid != slot.pid:
        return None
    return pidfiles.matching_process(entry)


def local_process_alive(slot: Slot) -> bool:
    return _bridge_process(slot) is not None


def stop_local_process(slot: Slot) -> None:
    """SIGTERM to the slot's worker; a pid now held by another process is left alone."""
    process = _bridge_process(slot)
    if process is not None:
        try:
            process.terminate()
        except psutil.Error:
            pass
    pid_file(slot.pk).unlink(missing_ok=True)


def remove_stale_pid_files() -> int:
    """Delete pid files whose process is gone (killed -9, crashed, or the pid reused since); returns how many.

    A stale file misleads whoever reads var/run/bridges/ (an operator, a stop that would
    wait for it); the health check clears them every cycle, and the launcher on start.
    """
    removed = 0
    for path in run_dir().glob("*.pid"):
        if pidfiles.recorded_process(path) is None:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
