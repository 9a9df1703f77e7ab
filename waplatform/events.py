"""The platform's event bus: one function records a domain event; subscribers get it after commit.

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
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from functools import partial
from typing import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from waplatform.backoff import backoff_delay
from waplatform.models import OutboxEvent
from waplatform.queues import enqueue_once_on_commit

logger = logging.getLogger(__name__)


# Every event type published anywhere: what a webhook endpoint may subscribe to (docs/webhooks.md).
# A new publish_event(type=...) adds its type here (tests/waplatform/test_event_catalogue.py checks).
EVENT_TYPES = [
    "message.queued", "message.sent", "message.status", "message.failed", "message.received",
    "conversation.updated", "conversation.handoff", "conversation.resumed", "conversation.agent_switched",
    "conversation.automation_paused", "session.status",
    # media (docs/media.md)
    "message.media_stored", "message.media_failed",
    # agents (docs/agents.md): a tenant's trigger switched off by the platform, with the reason
    "trigger.disabled",
    # the inbox's team events (docs/inbox.md)
    "conversation.assigned", "conversation.resolved", "conversation.reopened", "conversation.snoozed",
    "conversation.labels_changed", "note.created", "note.deleted", "contact.updated",
    "label.created", "label.deleted", "canned_reply.created", "canned_reply.updated", "canned_reply.deleted",
]
# Published for the platform's operators (tenant None): never delivered to a tenant's webhook.
PLATFORM_EVENT_TYPES = ["alert.opened", "alert.resolved"]

Subscriber = Callable[[dict], None]
_subscribers: dict[str, Subscriber] = {}


def register_subscriber(name: str, subscriber: Subscriber) -> None:
    """Add `subscriber` under `name` (idempotent: ready() may run more than once in tests)."""
    _subscribers[name] = subscriber


def unregister_subscriber(name: str) -> None:
    _subscribers.pop(name, None)


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


def hand_over(envelope: dict, names: list[str]) -> dict[str, str]:
    """Run the named subscribers; returns {name: error} for those that raised."""
    registered = subscribers()
    failed: dict[str, str] = {}
    for name in names:
        subscriber = registered.get(name)
        if subscriber is None:
            logger.warning("event %s: subscriber %s is no longer registered; dropped", envelope["id"], name)
            continue
        try:
            subscriber(envelope)
        except Exception as exc:
            logger.exception("event subscriber %s failed for %s %s", name, envelope["type"], envelope["id"])
            failed[name] = f"{name}: {type(exc).__name__}: {exc}"[:500]
    return failed


def record_outcome(row_id: int, *, still_pending: list[str], errors: dict[str, str], attempt: int) -> None:
    now = timezone.now()
    if not still_pending:
        OutboxEvent.objects.filter(pk=row_id).update(pending=[], delivered_at=now, attempts=attempt)
        return
    # Only a failure backs off: an event held behind an earlier one is due as soon as that one goes.
    delay = backoff_delay(attempt, base=settings.OUTBOX_RETRY_BASE_SECONDS,
                          cap=settings.OUTBOX_RETRY_MAX_DELAY_SECONDS) if errors else 0
    OutboxEvent.objects.filter(pk=row_id).update(
        pending=still_pending, attempts=attempt, next_attempt_at=now + timedelta(seconds=delay),
        last_error="\n".join(errors.values())[:2000] or F("last_error"),
    )


def _owed(rows: list[tuple[int, str]]) -> dict[str, list[tuple[int, list[str]]]]:
    """Per ordering key, the earlier events still owed to subscribers that are the relay's:
    (row id, pending names), for the keys of `rows` ((row id, ordering key), one publish's).

    Giving a subscriber an event now while it still owes an earlier one of the key would
    let this one overtake it; the relay hands both over in order. The relay's are the
    events whose hand-over failed and those published for it from the start
    (fan_out_by_relay: a batch's `message.sent`, which the bridge's `delivered` ack, on a
    web process's fast path, overtook at tenants' webhooks in bench faults); those are due
    at once from their insert, where a fast path's are due only after the grace period.
    Earlier events still on their own fast path do not hold one back: concurrent commits
    have no order to keep between them.
    """
    keys = {key for _, key in rows if key}
    if not keys:
        return {}
    ours = [row_id for row_id, _ in rows]
    owed: dict[str, list[tuple[int, list[str]]]] = {}
    for row_id, key, pending in OutboxEvent.objects.filter(
            Q(attempts__gt=0) | Q(next_attempt_at__lte=F("created_at")),
            ordering_key__in=keys, delivered_at__isnull=True, pk__lt=max(ours),
    ).exclude(pk__in=ours).values_list("pk", "ordering_key", "pending"):
        owed.setdefault(key, []).append((row_id, pending))
    return owed


def _held_back(row_id: int, ordering_key: str, names: list[str],
               owed: dict[str, list[tuple[int, list[str]]]]) -> list[str]:
    """Subscribers that still owe an earlier event of this key that is the relay's (see _owed)."""
    owing = {name for earlier, pending in owed.get(ordering_key, ()) if earlier < row_id for name in pending}
    return [name for name in names if name in owing]


def deliver_committed(rows: list[tuple[int, str]], envelopes: list[dict], names: list[str]) -> None:
    """The fast path, run by on_commit in the publishing process for one publish's events, in order:
    one read of what they owe, one write for those every subscriber took."""
    try:
        owed = _owed(rows)
        delivered: list[int] = []
        wake = False
        for (row_id, ordering_key), envelope in zip(rows, envelopes):
            held = _held_back(row_id, ordering_key, names, owed)
            errors = hand_over(envelope, [name for name in names if name not in held])
            still_pending = held + list(errors)
            if not still_pending:
                delivered.append(row_id)
                continue
            record_outcome(row_id, still_pending=still_pending, errors=errors, attempt=1)
            if ordering_key:
                # A later event of this publish must not overtake this one where it stays owed.
                owed.setdefault(ordering_key, []).append((row_id, still_pending))
            wake = wake or bool(held)
        if delivered:
            OutboxEvent.objects.filter(pk__in=delivered).update(pending=[], delivered_at=timezone.now(), attempts=1)
        if wake:
            _wake_relay()  # it hands the earlier event over, then this one, in one pass
    except Exception:
        # Whatever ran stays recorded as pending on the rows, and the relay repeats it
        # (subscribers are idempotent on the event id). The publisher's commit stands.
        logger.exception("outbox: fast path failed for events %s; left for the relay",
                         ", ".join(envelope["id"] for envelope in envelopes))


def _ordering_key(data: dict) -> str:
    conversation_id = data.get("conversation_id")
    return f"conversation:{conversation_id}" if conversation_id else ""


def publish_event(*, tenant_id: int | None, type: str, data: dict) -> dict:
    """Record the event with the current transaction; subscribers get it after commit. Returns the envelope.

    The OutboxEvent row commits or rolls back with the change it describes, so
    an event is never announced for a change that did not happen, nor lost for
    one that did (waplatform.outbox relays whatever the fast path missed).
    `tenant_id=None` is a platform event (alerts) for operators, never sent to a tenant.
    """
    return publish_events([(tenant_id, type, data)])[0]


def publish_events(events: list[tuple[int | None, str, dict]]) -> list[dict]:
    """publish_event for many (tenant_id, type, data) at once: one INSERT for all their rows."""
    envelopes = [build_event(tenant_id=tenant_id, type=type, data=data) for tenant_id, type, data in events]
    if not envelopes:
        return []
    names = list(_subscribers)
    inline = settings.EVENTS_INLINE_DELIVERY and not _by_relay.get()
    # Inline, the relay leaves a fresh row to the fast path for a grace period; otherwise it is the relay's at once.
    due = timezone.now() + (timedelta(seconds=settings.OUTBOX_RELAY_GRACE_SECONDS) if inline else timedelta(0))
    rows = OutboxEvent.objects.bulk_create([
        OutboxEvent(event_id=event["id"], tenant_id=event["tenant"], type=event["type"],
                    ordering_key=_ordering_key(event["data"]), envelope=event, pending=names, next_attempt_at=due)
        for event in envelopes
    ])
    if inline:
        transaction.on_commit(partial(deliver_committed, [(row.pk, row.ordering_key) for row in rows], envelopes,
                                      names))
    else:
        _wake_relay()
    return envelopes


def _wake_relay() -> None:
    enqueue_once_on_commit("waplatform.jobs.relay_events", queue="maintenance", flag=RELAY_WAKE_FLAG,
                           flag_ttl=settings.OUTBOX_WAKE_FLAG_SECONDS)


RELAY_WAKE_FLAG = "wap:outbox:wake"
_by_relay: ContextVar[bool] = ContextVar("events_by_relay", default=False)


@contextmanager
def fan_out_by_relay():
    """Events published inside reach their subscribers through the relay, not in this process.

    For the hot paths (a batch of sends): the subscribers (live inbox, webhook
    matching, agents, metrics, mirror) cost more than the change itself, so the
    batch commits, wakes one relay job on `maintenance`, and moves on.
    """
    token = _by_relay.set(True)
    try:
        yield
    finally:
        _by_relay.reset(token)
