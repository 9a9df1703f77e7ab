"""The platform the fault benchmark hurts: started as `make run` starts it, and counted from outside.

`FaultPlatform` runs `python -m waplatform.launcher` (tests/e2e/platform.py's
Launcher: free ports, its own embedded Redis, sandbox bridges spawned on
demand) on the bench's database, so this process reads the same rows through
the ORM. It sends through the REST API as a tenant does, reads what became of
every message from the database, and what each sandbox bridge received from
the bridge itself (`GET /sandbox/sent`, polled in the background so that a
bridge's record outlives the bridge being killed).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from tests.e2e.platform import Launcher, alive, command_line

# Messages to these numbers never echo back (docs/bridges.md: only 1555000… does).
RECIPIENT_PREFIX = "4477009"
DONE = ("sent", "delivered", "read", "played", "failed")
DELIVERED = ("delivered", "read", "played")
# Raised for the run, as an operator would in admin: the default tiers pace sends at 0.5–2 msg/s and
# 120–3,000 API calls/min, which would measure pacing, not recovery.
TIER_LIMITS = {"messages_per_second": 1000.0, "api_rate_limit_per_minute": 1_000_000}


@contextlib.contextmanager
def _without(*names: str):
    """The bench driver's own settings (PUBLIC_BASE_URL: its daphne) must not reach the launcher."""
    saved = {n: os.environ.pop(n) for n in names if n in os.environ}
    try:
        yield
    finally:
        os.environ.update(saved)


def launcher_env(database_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "POOL_PROVISIONER": "local",  # make run's default: bridges spawned on demand, pids recorded
        "EGRESS_ALLOW_PRIVATE_URLS": "true",  # the tenant's webhook receiver is this process, on loopback
        "PACING_JITTER_SECONDS": "0",
        "SANDBOX_AUTO_SCAN_SECONDS": "0.1",
        "LOG_LEVEL": "WARNING",
    }


@dataclass
class Outcome:
    """What became of the messages of one fault (by their text's tag)."""

    accepted: int = 0
    delivered: int = 0
    sent_only: int = 0
    failed: int = 0
    lost: int = 0
    duplicate_rows: int = 0
    duplicates_at_bridge: int = 0
    not_at_bridge: int = 0
    statuses: dict = field(default_factory=dict)


class FaultPlatform:
    def __init__(self, tmp: Path, *, database_url: str):
        self.tmp = tmp
        self.database_url = database_url
        self.launcher: Launcher | None = None
        self.keys: dict[str, str] = {}
        self.clients: dict[str, httpx.Client] = {}
        self._records: dict[tuple[int, int], list[dict]] = {}  # (slot id, pid) -> what that process received
        self._records_lock = threading.Lock()
        self._stop_polling = threading.Event()
        self._poller: threading.Thread | None = None
        self._generation = 0

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, *, reuse: Launcher | None = None, timeout: float = 480) -> Launcher:
        """A launcher; `reuse`: the stopped one's ports and var directory (a restart, as an operator does).

        `timeout` is for a hang: a start took 241 s on a 2-core machine at load 20."""
        self._generation += 1
        overrides = launcher_env(self.database_url)
        if reuse is not None:
            overrides.update(PORT=str(reuse.port), EMBEDDED_REDIS_PORT=str(reuse.redis_port),
                             WAP_VAR_DIR=str(reuse.var_dir))
        folder = self.tmp / f"launcher-{self._generation}"
        folder.mkdir(parents=True, exist_ok=True)
        with _without("PUBLIC_BASE_URL", "PORT"):
            launcher = Launcher(folder, **overrides)
        self.launcher = launcher
        launcher.wait_ready(timeout=timeout)
        if not self.keys:
            from tenants.models import Tier

            Tier.objects.update(**TIER_LIMITS)
            self.keys = {slug: launcher.api_key(slug) for slug in ("acme", "globex", "initech")}
        for client in self.clients.values():
            client.close()
        self.clients = {slug: httpx.Client(base_url=f"{launcher.base}/api/v1", timeout=30,
                                           headers={"Authorization": f"Bearer {key}"})
                        for slug, key in self.keys.items()}
        if self._poller is None:
            self._poller = threading.Thread(target=self._poll_bridges, daemon=True)
            self._poller.start()
        return launcher

    def close(self) -> None:
        self._stop_polling.set()
        if self._poller is not None:
            self._poller.join(timeout=10)
        for client in self.clients.values():
            client.close()
        if self.launcher is not None:
            self.stop(timeout=30)
            self.launcher.close()

    def processes(self) -> list[psutil.Process]:
        launcher = self.launcher
        try:
            return [psutil.Process(launcher.process.pid), *launcher.children(), *launcher.bridge_processes()]
        except psutil.Error:
            return launcher.bridge_processes()

    def stop(self, *, timeout: float) -> tuple[float | None, list[str]]:
        """SIGTERM to the launcher: (seconds until it and every process it ran are gone, or None;
        the command lines of those still running at the end of `timeout`)."""
        launcher = self.launcher
        if launcher.process.poll() is not None:
            return 0.0, []
        everything = self.processes()[1:]  # the launcher itself is watched through its Popen
        started = time.monotonic()
        launcher.process.terminate()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if launcher.process.poll() is not None and not any(alive(p) for p in everything):
                return time.monotonic() - started, []
            time.sleep(0.05)
        return None, [f"{p.pid} {command_line(p)[:120]}" for p in everything if alive(p)]

    # --- the tenant's side ----------------------------------------------------------------

    def working_sessions(self, slugs=("acme", "globex", "initech"), timeout: float = 120) -> None:
        for slug in slugs:
            response = self.clients[slug].post("/session/start", json={})
            assert response.status_code in (200, 202), response.text
        from pooling.models import WhatsAppSession

        deadline = time.monotonic() + timeout
        while WhatsAppSession.objects.filter(tenant__slug__in=slugs, status="WORKING").count() < len(slugs):
            if time.monotonic() > deadline:
                raise TimeoutError(f"sessions of {slugs} not WORKING within {timeout:.0f} s")
            time.sleep(0.3)

    def send(self, slug: str, tag: str, n: int, *, to: str = "", retry_for: float = 0.0) -> tuple[int, str]:
        """POST one message; with `retry_for`, repeat it (same Idempotency-Key) on errors and 503s.

        Returns (status code of the last answer, 0 for no answer; message id or "")."""
        body = {"to": to or recipient(tag, n), "type": "text", "text": {"body": f"{tag} {n}"}}
        headers = {"Idempotency-Key": f"{tag}-{n}"}
        deadline = time.monotonic() + retry_for
        while True:
            try:
                response = self.clients[slug].post("/messages", json=body, headers=headers)
                code = response.status_code
            except httpx.HTTPError:
                code, response = 0, None
            if code not in (0, 502, 503, 504) or time.monotonic() > deadline:
                return code, (response.json().get("id", "") if code == 202 else "")
            time.sleep(0.2)

    # --- counting -------------------------------------------------------------------------

    def messages(self, tag: str):
        from messaging.models import Message

        return Message.objects.filter(direction="out", text__startswith=f"{tag} ")

    def settled(self, tag: str) -> bool:
        return not self.messages(tag).exclude(status__in=DONE).exists()

    def wait_settled(self, tag: str, *, timeout: float, acks: float = 10.0, until_read: bool = False) -> float:
        """Until every message of `tag` is sent or failed (then up to `acks` s more for their acks:
        delivered, or with `until_read` read, the last one the sandbox sends)."""
        started = time.monotonic()
        while not self.settled(tag) and time.monotonic() - started < timeout:
            time.sleep(0.25)
        settled_at = time.monotonic()
        waiting_for = ("sent", "delivered") if until_read else ("sent",)
        while self.messages(tag).filter(status__in=waiting_for).exists() and time.monotonic() - settled_at < acks:
            time.sleep(0.25)
        return settled_at - started

    def outcome(self, tag: str) -> Outcome:
        rows = list(self.messages(tag).values("text", "status"))
        texts = Counter(r["text"] for r in rows)
        statuses = Counter(r["status"] for r in rows)
        at_bridge = Counter(s["text"] for s in self.bridge_sends() if s["text"].startswith(f"{tag} "))
        reached = {r["text"] for r in rows if r["status"] in DONE and r["status"] != "failed"}
        return Outcome(
            accepted=len(texts),
            delivered=sum(statuses[s] for s in DELIVERED),
            sent_only=statuses["sent"],
            failed=statuses["failed"],
            lost=sum(1 for r in rows if r["status"] not in DONE),
            duplicate_rows=sum(n - 1 for n in texts.values() if n > 1),
            duplicates_at_bridge=sum(n - 1 for n in at_bridge.values() if n > 1),
            not_at_bridge=len(reached - set(at_bridge)),
            statuses=dict(statuses),
        )

    def sent_times(self, tag: str) -> list[float]:
        return [m.timestamp() for m in self.messages(tag).exclude(sent_at=None).values_list("sent_at", flat=True)]

    # --- what the bridges received ------------------------------------------------------------

    def bridge_sends(self) -> list[dict]:
        self._poll_once()
        with self._records_lock:
            return [send for record in self._records.values() for send in record]

    def _poll_bridges(self) -> None:
        while not self._stop_polling.wait(0.3):
            try:
                self._poll_once()
            except Exception:  # noqa: BLE001 (a bench's background reader: the next poll tries again)
                pass

    def _poll_once(self) -> None:
        from django.db import close_old_connections

        from pooling.models import Slot

        close_old_connections()
        slots = Slot.objects.exclude(base_url="").exclude(pid=None).values_list("pk", "pid", "base_url", "api_key")
        for slot_id, pid, base_url, key in slots:
            with self._records_lock:
                known = self._records.setdefault((slot_id, pid), [])
                after = len(known)
            try:
                response = httpx.get(f"{base_url}/sandbox/sent", params={"after": after}, timeout=2,
                                     headers={"X-Api-Key": key})
                if response.status_code != 200 or self._pid_of(base_url, key) != str(pid):
                    continue
            except httpx.HTTPError:
                continue
            with self._records_lock:
                if len(known) == after:
                    known.extend(response.json())

    @staticmethod
    def _pid_of(base_url: str, key: str) -> str:
        # A port reused by another slot's new process must not be read as the old one's record.
        try:
            return str(httpx.get(f"{base_url}/sandbox/status", timeout=2, headers={"X-Api-Key": key}).json()["pid"])
        except (httpx.HTTPError, ValueError, KeyError):
            return ""

    # --- processes --------------------------------------------------------------------------

    def child(self, marker: str) -> psutil.Process:
        return self.launcher.child(marker)

    def redis(self):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.launcher.redis_port, socket_timeout=5)

    def web_process(self) -> psutil.Process:
        """The daphne serving the API's port (web-1)."""
        port = f"-p {self.launcher.port} "
        return next(c for c in psutil.Process(self.launcher.process.pid).children()
                    if "daphne" in command_line(c) and port in command_line(c) + " " and alive(c))


def recipient(tag: str, n: int) -> str:
    # One recipient per message: per-recipient pacing would otherwise serialise the run.
    return RECIPIENT_PREFIX + f"{zlib.crc32(tag.encode()) % 100:02d}{n:06d}"
