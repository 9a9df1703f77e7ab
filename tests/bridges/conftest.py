"""Fixtures for the bridge tests: real sandbox worker processes and a real webhook receiver.

Nothing here needs Django or the database; the only stub allowed in these
tests is httpx.MockTransport standing in for the outside HTTP world.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SANDBOX_API_KEY = "sandbox-test-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SandboxWorker:
    base_url: str
    api_key: str
    process: subprocess.Popen

    def control(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        """Call a /sandbox/* control endpoint (not part of either dialect)."""
        return httpx.request(method, self.base_url + path, headers={"X-Api-Key": self.api_key}, timeout=5, **kwargs)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=5)


def start_sandbox(*, capacity: int = 3, auto_scan_seconds: float = 0.3, ack_delay: float = 0.05,
                  echo_delay: float = 0.2) -> SandboxWorker:
    port = free_port()
    command = [sys.executable, "-m", "pooling.bridges.sandbox", "--port", str(port), "--capacity", str(capacity),
               "--auto-scan-seconds", str(auto_scan_seconds), "--ack-delay", str(ack_delay),
               "--echo-delay", str(echo_delay), "--api-key", SANDBOX_API_KEY]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}  # proves it needs no Django
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    worker = SandboxWorker(base_url=f"http://127.0.0.1:{port}", api_key=SANDBOX_API_KEY, process=process)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sandbox exited early: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(worker.base_url + "/ping", timeout=0.5).status_code == 200:
                return worker
        except httpx.TransportError:
            time.sleep(0.05)
    worker.stop()
    raise RuntimeError("sandbox did not answer /ping within 15 s")


@pytest.fixture
def spawn_sandbox() -> Iterator[Callable[..., SandboxWorker]]:
    """Factory for workers with non-default options; every one is killed after the test."""
    workers: list[SandboxWorker] = []

    def spawn(**options: float) -> SandboxWorker:
        workers.append(start_sandbox(**options))
        return workers[-1]

    yield spawn
    for worker in workers:
        worker.stop()


@pytest.fixture
def sandbox(spawn_sandbox: Callable[..., SandboxWorker]) -> SandboxWorker:
    """A capacity-3 worker that auto-scans QRs after 0.3 s."""
    return spawn_sandbox(capacity=3, auto_scan_seconds=0.3)


@pytest.fixture
def sandbox_worker(sandbox: SandboxWorker) -> str:
    """The base URL of a running capacity-3 sandbox worker."""
    return sandbox.base_url


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    fail_next: int = 0  # answer 500 to this many deliveries, to exercise the sender's retries
    condition: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, match: Callable[[Delivery], bool] = lambda d: True,
                 timeout: float = 10.0) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        with self.condition:
            while True:
                found = [d for d in self.deliveries if match(d)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"waited {timeout}s for {count} deliveries, got {len(found)}: "
                                         f"{[d.body[:200] for d in self.deliveries]}")
                self.condition.wait(remaining)


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    port = free_port()
    receiver = WebhookReceiver(url=f"http://127.0.0.1:{port}/hook")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with receiver.condition:
                failing = receiver.fail_next > 0
                if failing:
                    receiver.fail_next -= 1
                else:
                    receiver.deliveries.append(
                        Delivery(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.condition.notify_all()
            self.send_response(500 if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


CLOUD_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "cloudapi"


@pytest.fixture
def fixtures_dir() -> Path:
    """Real Cloud API webhook deliveries, kept in the repository (tests/fixtures/cloudapi/README.md)."""
    # Fail rather than skip: a silently skipped intake test is how payloads get dropped.
    assert sorted(p.name for p in CLOUD_FIXTURES.glob("*.json")) == [
        "callback_button.json", "callback_selection.json", "deleted_message.json", "edited_message.json",
        "message.json", "message_status.json", "system.json"], f"Cloud API fixtures missing from {CLOUD_FIXTURES}"
    return CLOUD_FIXTURES
