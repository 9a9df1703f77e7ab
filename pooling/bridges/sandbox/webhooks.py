"""Signed webhook delivery from the sandbox, in background tasks with retries.

Deliveries never run inside the request that caused them: the caller's HTTP
call returns first, like a real bridge, and a slow or dead receiver cannot
stall the worker's API.
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

RETRY_DELAYS = (0.25, 0.5, 1.0)  # 1 try + 3 retries
DRAIN_SECONDS = 2.0  # pending deliveries get this long at shutdown (the launcher allows 3 s)


class Dispatcher:
    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        # Strong references: the event loop only keeps weak ones to running tasks.
        self._tasks: set[asyncio.Task] = set()

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

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> bool:
        headers = {"Content-Type": "application/json", "User-Agent": "wa-platform-sandbox", "X-Sandbox": "true", **headers}
        for attempt, delay in enumerate((0.0, *RETRY_DELAYS)):
            if delay:
                await asyncio.sleep(delay)
            try:
                response = await self._http().post(url, content=body, headers=headers)
            except Exception as exc:  # any transport failure is worth the next attempt
                logger.warning("webhook to %s failed (attempt %d): %r", url, attempt + 1, exc)
                continue
            if response.status_code < 300:
                return True
            logger.warning("webhook to %s answered %d (attempt %d)", url, response.status_code, attempt + 1)
        logger.error("webhook to %s given up after %d attempts", url, len(RETRY_DELAYS) + 1)
        return False

    async def post_waha(self, url: str, hmac_key: str, envelope: dict) -> bool:
        body = json.dumps(envelope, separators=(",", ":")).encode()
        headers = {"X-Webhook-Request-Id": "req_" + secrets.token_hex(12), "X-Webhook-Timestamp": str(int(time.time() * 1000))}
        if hmac_key:
            headers["X-Webhook-Hmac"] = waha_signature(hmac_key, body)
            headers["X-Webhook-Hmac-Algorithm"] = "sha512"
        return await self.post(url, body, headers)

    async def post_cloud(self, url: str, app_secret: str, delivery: dict) -> bool:
        body = json.dumps(delivery, separators=(",", ":")).encode()
        return await self.post(url, body, {"X-Hub-Signature-256": cloud_signature(app_secret, body)})

    async def aclose(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        # On SIGTERM the platform's web process still listens (the launcher stops bridges
        # before it): deliver what is pending, within a bound, rather than drop it.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=drain_seconds)
        for task in list(self._tasks):
            task.cancel()
        if self._client is not None:
            await self._client.aclose()
