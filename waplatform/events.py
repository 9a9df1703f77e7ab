"""The platform's event bus: one function publishes a domain event after commit.

An event is a plain JSON-safe envelope:
    {"id": "<uuid>", "type": "message.status", "tenant": 42,
     "created_at": "2026-11-28T12:00:00.123456+00:00", "data": {...}}

Subscribers are dotted paths in settings.EVENT_SUBSCRIBERS, each a callable
taking the envelope; the messaging app adds the live inbox and the tenants'
webhooks, the Firestore mirror can join the same way. Apps lower in the
dependency order (pooling) publish without knowing who listens.
"""

import json
import logging
import uuid
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@lru_cache(maxsize=None)
def _subscriber(path: str):
    return import_string(path)


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
    for path in settings.EVENT_SUBSCRIBERS:
        try:
            _subscriber(path)(event)
        except Exception:
            logger.exception("event subscriber %s failed for %s %s", path, event["type"], event["id"])


def publish_event(*, tenant_id: int | None, type: str, data: dict) -> dict:
    """Publish after the current transaction commits (at once outside one). Returns the envelope.

    `tenant_id=None` is a platform event (alerts) for operators, never sent to a tenant.
    """
    event = build_event(tenant_id=tenant_id, type=type, data=data)
    transaction.on_commit(lambda: deliver(event))
    return event
