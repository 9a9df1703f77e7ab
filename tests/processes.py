"""Processes of the platform that a test starts beside itself (workers, daphne), on the test database."""

import os
import signal
import subprocess
from urllib.parse import quote

import pytest
from django.db import connection


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
