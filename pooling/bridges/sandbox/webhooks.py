"""Signed webhook delivery from the sandbox, in background tasks with retries.

Deliveries never run inside the request that caused them: the caller's HTTP
call returns first, like a real bridge, and a slow or dead receiver cannot
stall the worker's API.

Retries follow what the real engines do, so that a platform outage behaves as
it would in production: a WAHA session's webhook `retries` config (policy,
delaySeconds, attempts; WAHA's defaults when absent), and for Cloud numbers an
exponential schedule like Meta's. A few quick retries (as before) lost every
ack and inbound message sent while the platform's web process restarted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from pooling.bridges.signatures import cloud_signature, waha_signature

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger("pooling.bridges.sandbox")

# WAHA's defaults for a webhook without a `retries` config.
WAHA_DEFAULT_RETRIES = {"policy": "constant", "delaySeconds": 2, "attempts": 15}
# Meta retries a failed webhook with growing delays for days; a sandbox keeps them in
# memory, so it stops at ~30 min (1 s, 2 s, ... then every 5 min).
CLOUD_RETRIES = {"policy": "exponential", "delaySeconds": 1, "attempts": 15}
MAX_RETRY_DELAY_SECONDS = 300.0
DRAIN_SECONDS = 2.0  # deliveries under way get this long at shutdown (the launcher allows 3 s)


def retry_delays(retries: dict | None) -> list[float]:
    """The waits before each retry (attempts - 1 of them) of a WAHA `retries` config."""
    config = {**WAHA_DEFAULT_RETRIES, **(retries or {})}
    try:
        base = max(0.0, float(config["delaySeconds"]))
        attempts = max(1, min(int(config["attempts"]), 100))
    except (TypeError, ValueError):
        return retry_delays(None)
    growth = {"constant": lambda n: 1, "linear": lambda n: n, "exponential": lambda n: 2 ** (n - 1)}
    grow = growth.get(config.get("policy"), growth["constant"])
    return [min(base * grow(n), MAX_RETRY_DELAY_SECONDS) for n in range(1, attempts)]


class Dispatcher:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        # Strong references: the event loop only keeps weak ones to running tasks.
        self._tasks: set[asyncio.Task] = set()
        self._closing = asyncio.Event()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx  # lazily: a worker that never delivers never pays for it

            self._client = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))
        return self._client

    async def post(self, url: str, body: bytes, headers: dict[str, str], retries: dict | None = None) -> bool:
        headers = {"Content-Type": "application/json", "User-Agent": "wa-platform-sandbox", "X-Sandbox": "true", **headers}
        delays = retry_delays(retries)
        for attempt, delay in enumerate((0.0, *delays)):
            if delay and not await self._wait_unless_closing(delay):
                logger.warning("webhook to %s dropped at shutdown after %d attempts", url, attempt)
                return False
            try:
                response = await self._http().post(url, content=body, headers=headers)
            except Exception as exc:  # any transport failure is worth the next attempt
                logger.warning("webhook to %s failed (attempt %d): %r", url, attempt + 1, exc)
                continue
            if response.status_code < 300:
                return True
            logger.warning("webhook to %s answered %d (attempt %d)", url, response.status_code, attempt + 1)
        logger.error("webhook to %s given up after %d attempts", url, len(delays) + 1)
        return False

    async def _wait_unless_closing(self, delay: float) -> bool:
        """Wait `delay` before a retry; False at once when the worker is stopping: a retry's wait
        (seconds to minutes) would outlast the launcher's stop budget, and the bridge be killed."""
        try:
            await asyncio.wait_for(self._closing.wait(), timeout=delay)
        except asyncio.TimeoutError:
            return True
        return False

    async def post_waha(self, url: str, hmac_key: str, envelope: dict, retries: dict | None = None) -> bool:
        body = json.dumps(envelope, separators=(",", ":")).encode()
        headers = {"X-Webhook-Request-Id": "req_" + secrets.token_hex(12), "X-Webhook-Timestamp": str(int(time.time() * 1000))}
        if hmac_key:
            headers["X-Webhook-Hmac"] = waha_signature(hmac_key, body)
            headers["X-Webhook-Hmac-Algorithm"] = "sha512"
        return await self.post(url, body, headers, retries)

    async def post_cloud(self, url: str, app_secret: str, delivery: dict) -> bool:
        body = json.dumps(delivery, separators=(",", ":")).encode()
        return await self.post(url, body, {"X-Hub-Signature-256": cloud_signature(app_secret, body)}, CLOUD_RETRIES)

    async def aclose(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        # On SIGTERM the platform's web process still listens (the launcher stops bridges
        # before it): deliver what is pending, within a bound, rather than drop it.
        self._closing.set()  # retries waiting give up; deliveries under way get drain_seconds
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=drain_seconds)
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
