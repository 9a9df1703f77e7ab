"""Processes of the platform that a test starts beside itself (workers, daphne), on the test database."""

import os
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from django.db import connection

from tests.waiting import wait_until


def shared_database_url() -> str:
    """DATABASE_URL of the database this test run created, for a subprocess to share it."""
    s = connection.settings_dict
    if connection.vendor == "sqlite":
        if connection.is_in_memory_db():
            pytest.skip("a subprocess must share the test database; an in-memory SQLite one cannot be shared")
        return f"sqlite:///{s['NAME']}"
    auth = f"{quote(s['USER'] or '')}:{quote(s['PASSWORD'] or '')}@" if s["USER"] else ""
    return f"postgres://{auth}{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    """Stop a process started with start_new_session=True, and everything it started; SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def daphne_command(port: int) -> list[str]:
    """The platform's web process as `make run` starts it, on 127.0.0.1:port."""
    return [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "waplatform.asgi:application"]


def wait_answering(process: subprocess.Popen, url: str, *, log: Path, timeout: float = 30, **request) -> None:
    """Wait until a server this test started answers 200 at `url`; if it exits first, fail with its log."""

    def answering() -> bool:
        if process.poll() is not None:
            return True
        try:
            return httpx.get(url, timeout=2, **request).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answering, timeout=timeout, interval=0.1, message=f"{url} to answer")
    assert process.poll() is None, f"exited before answering {url}; {log}:\n{log.read_text()[-3000:]}"
