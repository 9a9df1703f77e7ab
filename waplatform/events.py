"""The platform's event bus: one function publishes a domain event after commit.

An event is a plain JSON-safe envelope:
    {"id": "<uuid>", "type": "message.status", "tenant": 42,
     "created_at": "2026-11-28T12:00:00.123456+00:00", "data": {...}}

Subscribers register in code, from their app's `AppConfig.ready()`, each a
callable taking the envelope: messaging adds the live inbox and the tenants'
webhooks, operations the metrics, agents the replies, the Firestore mirror its
writes. Apps lower in the dependency order (pooling) publish without knowing
who listens, and the environment cannot swap a subscriber for another callable.
"""

import json
import logging
import uuid
from typing import Callable

from django.db import transaction
from django.utils import timezone

logger = logging.getLogger(__name__)


Subscriber = Callable[[dict], None]
_subscribers: dict[str, Subscriber] = {}


def register_subscriber(name: str, subscriber: Subscriber) -> None:
    """Add `subscriber` under `name` (idempotent: ready() may run more than once in tests)."""
    _subscribers[name] = subscriber


def subscribers() -> dict[str, Subscriber]:
    return dict(_subscribers)


def build_event(*, tenant_id: int | None, type: str, data: dict) -> dict:
    envelope = {
        "id": str(uuid.uuid4()),
        "type": type,
        "tenant": tenant_id,
        "created_at": timezone.now().isoformat(),
        "data": data,
    }
    # Round-trip now so a non-serialisable payload fails in the caller, not later in a worker.
    return json.loads(json.dumps(envelope))


def deliver(event: dict) -> None:
    # Runs after commit: a failure here cannot undo the change, so it is
    # logged, and one broken subscriber must not starve the others.
    for name, subscriber in list(_subscribers.items()):
        try:
            subscriber(event)
        except Exception:
            logger.exception("event subscriber %s failed for %s %s", name, event["type"], event["id"])


def publish_event(*, tenant_id: int | None, type: str, data: dict) -> dict:
    """Publish after the current transaction commits (at once outside one). Returns the envelope.

    `tenant_id=None` is a platform event (alerts) for operators, never sent to a tenant.
    """
    event = build_event(tenant_id=tenant_id, type=type, data=data)
    transaction.on_commit(lambda: deliver(event))
    return event
