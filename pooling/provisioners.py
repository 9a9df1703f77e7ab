"""Where new slots come from.

`local` spawns sandbox bridge workers as separate processes on free loopback
ports. They are detached (own session) so they outlive the job that spawned
them; pid and port are recorded on the slot and in var/run/bridges/ so the
launcher stops them on exit. `static` makes nothing: operators register
bridge servers (WAHA, Cloud API) with add_slot, the admin or the staff API.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from django.conf import settings

from pooling.models import Slot
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
            "--host", "127.0.0.1", "--port", str(port),
            # "=" form: a generated key may start with "-", which argparse would take for a flag.
            "--capacity", str(slot.capacity), f"--api-key={slot.api_key}",
            "--auto-scan-seconds", str(settings.SANDBOX_AUTO_SCAN_SECONDS),
        ],
        cwd=settings.BASE_DIR,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
    )
    log.close()
    (run_dir() / f"slot-{slot.pk}.pid").write_text(str(process.pid))
    base_url = f"http://127.0.0.1:{port}"
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
    stop_local_process(process.pid)
    raise ProvisioningError(f"sandbox worker on port {port} did not answer within the provisioning timeout")


def local_process_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        process = psutil.Process(pid)
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop_local_process(pid: int | None, slot_id: int | None = None) -> None:
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    if slot_id is not None:
        (run_dir() / f"slot-{slot_id}.pid").unlink(missing_ok=True)
