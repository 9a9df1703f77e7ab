"""The HTTP plumbing both HTTP dialects share: one httpx client, one error mapping."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ssl
from functools import lru_cache

import httpx

from pooling.bridges.base import BridgeError, PermanentBridgeError, TransientBridgeError


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """One verifying TLS context per process, shared by every client.

    httpx loads the CA bundle for each new client, even for plain-http
    loopback: 44 ms per client under load, 38% of a send (bench `queue`,
    docs/performance.md). The context is what httpx builds for verify=True,
    so SSL_CERT_FILE / SSL_CERT_DIR still apply. A worker pool's parent builds
    it before the fork (WORKER_PRELOAD_MODULES), so no worker's first send pays it.
    """
    return httpx.create_ssl_context()

ErrorMapper = Callable[[httpx.Response, str, dict], BridgeError]


def response_json(response: httpx.Response) -> dict:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {"data": data}


def error_fields(body: dict) -> tuple[str, str]:
    """(code, reason) from a Graph error body or a WAHA/NestJS error body."""
    error = body.get("error")
    if isinstance(error, dict):  # Graph: {"error": {"code", "message", "error_data"...}}
        reason = error.get("message") or error.get("title") or ""
        details = (error.get("error_data") or {}).get("details") if isinstance(error.get("error_data"), dict) else None
        if details and details not in reason:
            reason = f"{reason}: {details}" if reason else details
        return str(error.get("code", "")), reason
    message = body.get("message")  # NestJS: {"statusCode", "message", "error"}
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    reason = str(message or error or "")
    return str(body.get("code", "")), reason


def default_error(response: httpx.Response, path: str, body: dict) -> BridgeError:
    code, reason = error_fields(body)
    reason = reason or f"HTTP {response.status_code} from {path}"
    if response.status_code >= 500 or response.status_code in (408, 429):
        return TransientBridgeError(reason, code=code or response.status_code, http_status=response.status_code)
    return PermanentBridgeError(reason, code=code or response.status_code, http_status=response.status_code)


class HttpClient:
    """A sync httpx client whose failures all come out as typed BridgeErrors.

    `transport` lets tests stub the outside HTTP layer (httpx.MockTransport).
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: dict[str, str],
        timeout: float,
        transport: httpx.BaseTransport | None = None,
        error_mapper: ErrorMapper = default_error,
    ) -> None:
        # Connect gets its own short budget: a dead worker should fail fast.
        self._client = httpx.Client(
            base_url=base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            transport=transport,
            verify=tls_context(),
        )
        self._error_mapper = error_mapper

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        headers: dict | None = None,
        error_mapper: ErrorMapper | None = None,
        data: dict | None = None,
        files: dict | None = None,
    ) -> httpx.Response:
        try:
            response = self._client.request(method, path, json=json, params=params, headers=headers,
                                            data=data, files=files)
        except httpx.TimeoutException as exc:
            raise TransientBridgeError(f"timeout on {method} {path}: {exc!r}", code="timeout") from exc
        except httpx.TransportError as exc:
            # Refused, reset, or the worker died mid-answer: all worth a retry elsewhere/later.
            raise TransientBridgeError(f"connection failed on {method} {path}: {exc!r}", code="connection") from exc
        if response.status_code >= 400:
            raise (error_mapper or self._error_mapper)(response, path, response_json(response))
        return response

    def close(self) -> None:
        self._client.close()
