"""Fixtures for the bridge tests: real sandbox worker processes and a real webhook receiver.

Nothing here needs Django or the database; the only stub allowed in these
tests is httpx.MockTransport standing in for the outside HTTP world.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.http_receiver import HttpReceiver, Request, free_port
from tests.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
SANDBOX_API_KEY = "sandbox-test-key"


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

    def answers_ping() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"sandbox exited early: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            return httpx.get(worker.base_url + "/ping", timeout=0.5).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers_ping, timeout=15, message="the sandbox to answer /ping")
    except AssertionError:
        worker.stop()
        raise
    return worker


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


# A bridge's webhooks land on the suite's one local HTTP receiver (tests/http_receiver.py).
Delivery = Request
WebhookReceiver = HttpReceiver


@pytest.fixture
def webhook_receiver(http_receiver: Callable[..., HttpReceiver]) -> HttpReceiver:
    """Answers 200 to every POST (after `fail_next` 500s); `wait_for(n)` returns what it accepted."""
    return http_receiver()


CLOUD_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "cloudapi"


@pytest.fixture
def fixtures_dir() -> Path:
    """Real Cloud API webhook deliveries, kept in the repository (tests/fixtures/cloudapi/README.md)."""
    # Fail rather than skip: a silently skipped intake test is how payloads get dropped.
    assert sorted(p.name for p in CLOUD_FIXTURES.glob("*.json")) == [
        "callback_button.json", "callback_selection.json", "deleted_message.json", "edited_message.json",
        "message.json", "message_status.json", "system.json"], f"Cloud API fixtures missing from {CLOUD_FIXTURES}"
    return CLOUD_FIXTURES
