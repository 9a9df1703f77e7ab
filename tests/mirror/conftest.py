"""The Firestore mirror against a real gRPC Firestore: the npm emulator in
tests/mirror/emulator, started here as a Node process on a free loopback port.

It is in memory, so each test gets a fresh project id (a fresh database).
Tests read back only with operations the emulator gets right: document gets
and plain collection streams (docs/firestore.md lists what it gets wrong).
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.api_core.exceptions import ServiceUnavailable
from google.api_core.retry import Retry, if_exception_type
from google.cloud import firestore

from mirror import client as mirror_client
from tests.bridges.conftest import free_port
# The messaging tests' fixtures (platform: a tenant WORKING on a real sandbox bridge), by import.
from tests.messaging.conftest import *  # noqa: F401,F403,E402
from tests.messaging.conftest import _messaging_settings  # noqa: F401,E402  (autouse; private names skip *)

EMULATOR_DIR = Path(__file__).parent / "emulator"
# gRPC shares connections between channels to one address: right after the
# emulator restarts, a read can meet the reconnect backoff the mirror's
# failed writes left behind.
READ_RETRY = Retry(predicate=if_exception_type(ServiceUnavailable), initial=0.1, maximum=1.0, timeout=15)
INSTALLED_MARKER = EMULATOR_DIR / "node_modules" / "@firestore-emulator" / "server" / "package.json"


def ensure_emulator_installed() -> None:
    """Install the emulator's npm packages once (CI's .ci/run does it up front)."""
    if INSTALLED_MARKER.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("The mirror tests need Node 20 and npm for the Firestore emulator: install them, then run "
                    "`npm ci --prefix tests/mirror/emulator`.", pytrace=False)
    with open(EMULATOR_DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs on one checkout install once
        if not INSTALLED_MARKER.exists():
            done = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=EMULATOR_DIR,
                                  capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                pytest.fail(f"`npm ci` in {EMULATOR_DIR} failed:\n{done.stderr[-2000:]}", pytrace=False)


class Emulator:
    """One `node server.js PORT` process; stop() and start() again keep the port (and lose the data)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Emulator":
        ensure_emulator_installed()
        node = shutil.which("node")
        if node is None:
            pytest.fail("node is not installed; the mirror tests need Node 20 for the Firestore emulator.")
        self.process = subprocess.Popen([node, "server.js", str(self.port)], cwd=EMULATOR_DIR,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        line = self.process.stdout.readline()  # the server prints one line once bound, or its error
        if "listening" not in line:
            self.stop()
            raise RuntimeError(f"firestore emulator did not start: {line.strip()}")
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process.stdout.close()
            self.process = None


@pytest.fixture(scope="session")
def firestore_emulator() -> Iterator[Emulator]:
    emulator = Emulator().start()
    yield emulator
    emulator.stop()


@dataclass
class Mirror:
    """The test's view of Firestore: a separate client on the same emulator project."""

    project: str
    db: firestore.Client

    def doc(self, path: str) -> dict | None:
        snap = self.db.document(path).get(retry=READ_RETRY, timeout=5)
        return snap.to_dict() if snap.exists else None

    def ids(self, collection: str) -> list[str]:
        return sorted(snap.id for snap in self.db.collection(collection).stream(retry=READ_RETRY, timeout=5))

    def wipe_tenant(self, tenant_id: int) -> int:
        """Delete a tenant's whole tree (the emulator has no recursive delete)."""
        refs = []
        for conversation_id in self.ids(f"tenants/{tenant_id}/conversations"):
            base = f"tenants/{tenant_id}/conversations/{conversation_id}"
            refs += [self.db.document(f"{base}/messages/{m}") for m in self.ids(f"{base}/messages")]
            refs.append(self.db.document(base))
        refs.append(self.db.document(f"tenants/{tenant_id}"))
        batch = self.db.batch()
        for ref in refs:
            batch.delete(ref)
        batch.commit(retry=None, timeout=5)
        return len(refs)


def use_emulator(settings, monkeypatch, emulator: Emulator) -> Mirror:
    project = f"test-{uuid.uuid4().hex[:12]}"
    settings.FIRESTORE_PROJECT = project
    settings.FIRESTORE_EMULATOR_HOST = emulator.host
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", emulator.host)
    settings.FIRESTORE_TIMEOUT_SECONDS = 3
    settings.FIRESTORE_MIRROR_RETRY_BASE_SECONDS = 0.05
    settings.FIRESTORE_MIRROR_RETRY_MAX_DELAY_SECONDS = 0.2
    return Mirror(project=project, db=firestore.Client(project=project))


@pytest.fixture
def mirror(firestore_emulator, settings, monkeypatch) -> Iterator[Mirror]:
    """The mirror switched on against the shared emulator, on a project of this test's own."""
    view = use_emulator(settings, monkeypatch, firestore_emulator)
    yield view
    view.db.close()
    mirror_client.reset_client()
