"""`make run` as a user runs it: the launcher on free ports, then SIGTERM."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from tests.waiting import wait_until
from waplatform.embedded_redis import free_port

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    def ready() -> bool:
        assert process.poll() is None, "launcher exited before it was ready"
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout=timeout, interval=0.5, message=f"{url} to answer 200")


def raw_get(port: int, *, header_bytes: int) -> bytes:
    """A GET with one header of the given size; returns the status line (empty if dropped)."""
    import socket

    request = (f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: {'a' * header_bytes}\r\n"
               "Connection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except OSError:
            pass
    return answer.split(b"\r\n", 1)[0]


def command_line(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def test_the_launcher_starts_everything_and_sigterm_stops_every_child(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PROMETHEUS_MULTIPROC_DIR")}
    env.update(
        PORT=str(port),
        EMBEDDED_REDIS_PORT=str(free_port()),
        WAP_VAR_DIR=str(tmp_path / "var"),
        WORKER_SCALE="0.1",
    )
    log = open(tmp_path / "launcher.log", "w")
    launcher = subprocess.Popen(
        [sys.executable, "-m", "waplatform.launcher"], cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", launcher)
        login = httpx.get(f"http://127.0.0.1:{port}/admin/login/", timeout=10)
        headers_8k = raw_get(port, header_bytes=8 * 1024)
        headers_20k = raw_get(port, header_bytes=20 * 1024)
        children = psutil.Process(launcher.pid).children(recursive=True)
        names = " ".join(command_line(c) for c in children)

        launcher.send_signal(signal.SIGTERM)
        returncode = launcher.wait(timeout=75)
    finally:
        if launcher.poll() is None:
            launcher.kill()
        log.close()

    output = (tmp_path / "launcher.log").read_text()
    assert login.status_code == 200 and b"WA Platform" in login.content
    assert headers_8k.startswith(b"HTTP/1.1 200") and not headers_20k.startswith(b"HTTP/1.1 200")
    assert "Demo operator: operator /" in output and f"http://127.0.0.1:{port}/admin/" in output
    assert "daphne" in names and "run_worker_pool" in names and "run_scheduler" in names and "redis-server" in names
    assert returncode == 0, f"a SIGTERM stop is a clean stop, not exit {returncode}\n{output[-3000:]}"
    _, still_running = psutil.wait_procs(children, timeout=2)  # gone with the launcher, or at most just after
    alive = [c.pid for c in still_running if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert alive == [], f"left behind: {alive}\n{output[-3000:]}"
