"""Operator alerts, raised from any app: one open alert per (kind, key), resolved when the cause goes away.

The Alert rows live in operations, the top of the dependency order, while the
apps that notice problems (pooling, messaging) sit below it and cannot import
it. So they call this module, and operations plugs the storage in from its
AppConfig.ready() (`register_alert_backend`). The backend writes on the
caller's database connection, so an alert raised inside a transaction commits
or rolls back with the change that raised it.

Kinds are known here, in code: adding one is a line in `AlertKind`, not a
migration (the column has no `choices`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol


class AlertKind(StrEnum):
    POOL_FULL = "pool_full"
    POOL_BUSY = "pool_busy"
    SLOT_DOWN = "slot_down"
    PROVISIONING_FAILED = "provisioning_failed"
    PROCESS_MEMORY = "process_memory"
    QUEUE_BACKLOG = "queue_backlog"
    WEBHOOK_DEAD_LETTERS = "webhook_dead_letters"
    SPAM_RATE_LIMIT = "spam_rate_limit"


class AlertBackend(Protocol):
    def raise_alert(self, *, kind: str, key: str, message: str) -> Any: ...

    def resolve_alert(self, *, kind: str, key: str) -> int: ...


_backend: AlertBackend | None = None


def register_alert_backend(backend: AlertBackend) -> None:
    global _backend
    _backend = backend


def check_kind(kind: str) -> AlertKind:
    try:
        return AlertKind(kind)
    except ValueError:
        raise ValueError(f"unknown alert kind {kind!r}; add it to waplatform.alerts.AlertKind") from None


def _registered() -> AlertBackend:
    if _backend is None:
        raise RuntimeError("no alert backend registered: operations must be in INSTALLED_APPS")
    return _backend


def raise_alert(*, kind: str, key: str, message: str) -> Any:
    """Open the (kind, key) alert, or update the message of the one already open. Returns the alert."""
    return _registered().raise_alert(kind=check_kind(kind), key=key, message=message)


def resolve_alert(*, kind: str, key: str) -> int:
    """Resolve the open (kind, key) alert, if any. Returns how many were resolved (0 or 1)."""
    return _registered().resolve_alert(kind=check_kind(kind), key=key)
