"""Writes of the Firestore mirror: enqueue on events, mirror one object, retry, dead-letter.

Rules (docs/firestore.md):
- the database is the source of truth: a job carries ids, re-reads the rows
  and writes what they say now, so jobs may run late, twice or out of order;
- a message's status never goes backwards in Firestore: each write compares
  the stored status rank in the same transaction (mirror.client.write_guarded);
- Firestore being slow or down never touches a send or an inbound message:
  the event subscriber only enqueues, and a failed enqueue becomes a Backlog
  row that the sweep picks up.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from redis.exceptions import RedisError

from agents import selectors as agent_selectors
from messaging.models import Conversation, Message
from mirror import client, documents
from mirror.models import Backlog, DeadLetter, Kind, MirrorStatus
from pooling.models import WhatsAppSession
from tenants.models import Tenant
from waplatform.backoff import backoff_delay
from waplatform.queues import QueueFull, enqueue, enqueue_on_commit, get_queue

logger = logging.getLogger(__name__)


# --- from events to jobs ---------------------------------------------------------------


def targets_for_event(event: dict) -> list[tuple[str, int]]:
    """Which mirrored objects an event changes: (kind, id) pairs."""
    event_type = event.get("type") or ""
    data = event.get("data") or {}
    if event_type.startswith("message.") and data.get("id"):
        return [(Kind.MESSAGE, int(data["id"]))]  # the message job rewrites its conversation too
    if data.get("conversation_id"):
        return [(Kind.CONVERSATION, int(data["conversation_id"]))]
    if event_type.startswith(("session.", "tenant.")):
        return [(Kind.TENANT, int(event["tenant"]))]
    return []


def enqueue_for_event(*, event: dict) -> int:
    """Enqueue the mirror jobs for one event envelope (runs after the publisher's commit)."""
    tenant_id = event.get("tenant")
    if not tenant_id:
        return 0  # platform events (alerts) belong to no tenant and are not mirrored
    ref = {"id": event.get("id", ""), "type": event.get("type", ""), "created_at": event.get("created_at")}
    enqueued = 0
    for kind, object_id in targets_for_event(event):
        enqueued += _enqueue_or_backlog(kind=kind, tenant_id=tenant_id, object_id=object_id, event=ref)
    return enqueued


def _enqueue_or_backlog(*, kind: str, tenant_id: int, object_id: int, event: dict | None,
                        attempt: int = 1, delay: float = 0) -> int:

    args = (str(kind), tenant_id, object_id, event, attempt)  # plain str: jobs pickle no enums
    try:
        if delay > 0:
            get_queue(settings.FIRESTORE_MIRROR_QUEUE).enqueue_in(timedelta(seconds=delay), "mirror.jobs.mirror_object", *args)
        else:
            enqueue("mirror.jobs.mirror_object", *args, queue=settings.FIRESTORE_MIRROR_QUEUE)
        return 1
    except (QueueFull, RedisError) as exc:
        # The send or inbound that raised this event has committed; it must not
        # fail or wait for Redis. The row is the reminder the sweep acts on.
        logger.warning("mirror: could not enqueue %s %s (%s); left for the backlog sweep", kind, object_id, exc)
        Backlog.objects.get_or_create(kind=kind, object_id=object_id, defaults={"tenant_id": tenant_id})
        return 0


def sweep_backlog(*, limit: int | None = None) -> int:
    """Enqueue mirror jobs that could not be enqueued when their event happened. Returns how many."""
    if not client.is_enabled():
        return 0
    swept = 0
    for row in Backlog.objects.order_by("pk")[: limit or settings.SWEEP_BATCH_SIZE]:
        if not _enqueue_or_backlog(kind=row.kind, tenant_id=row.tenant_id, object_id=row.object_id, event=None):
            break  # still failing: keep the rest for the next sweep
        Backlog.objects.filter(pk=row.pk).delete()
        swept += 1
    return swept


# --- one mirror job --------------------------------------------------------------------


def mirror_object(*, kind: str, tenant_id: int, object_id: int, event: dict | None = None, attempt: int = 1) -> str:
    """Write one object's documents from the database; retry transient errors, dead-letter the last one."""
    if not client.is_enabled():
        return "disabled"
    try:
        written = write_object(kind=kind, tenant_id=tenant_id, object_id=object_id)
    except client.TRANSIENT_ERRORS as exc:
        client.reset_client()
        _record_failure(tenant_id=tenant_id, error=exc)
        if attempt < settings.FIRESTORE_MIRROR_MAX_ATTEMPTS:
            delay = retry_delay(attempt)
            logger.info("mirror: %s %s attempt %s failed (%s); retry in %.1f s", kind, object_id, attempt,
                        type(exc).__name__, delay)
            _enqueue_or_backlog(kind=kind, tenant_id=tenant_id, object_id=object_id, event=event,
                                attempt=attempt + 1, delay=delay)
            return "retrying"
        _dead_letter(kind=kind, tenant_id=tenant_id, object_id=object_id, event=event, attempts=attempt, error=exc)
        return "dead"
    except Exception as exc:
        # Not transient (permission denied, invalid data, a bug): retrying will
        # not help, and rq's failed registry is not where operators look. The
        # dead letter is, with a retry action for after the fix.
        logger.exception("mirror: %s %s of tenant %s failed", kind, object_id, tenant_id)
        _record_failure(tenant_id=tenant_id, error=exc)
        _dead_letter(kind=kind, tenant_id=tenant_id, object_id=object_id, event=event, attempts=attempt, error=exc)
        return "dead"
    _record_success(tenant_id=tenant_id, kind=kind, object_id=object_id, event=event)
    return f"written {written}"


def retry_delay(attempt: int) -> float:
    return backoff_delay(attempt, base=settings.FIRESTORE_MIRROR_RETRY_BASE_SECONDS,
                         cap=settings.FIRESTORE_MIRROR_RETRY_MAX_DELAY_SECONDS)


def write_object(*, kind: str, tenant_id: int, object_id: int, force: bool = False) -> int:
    """Read the object's rows and write its documents in one guarded transaction. Returns documents written.

    An object gone from the database has its documents deleted, so the mirror
    never shows what the platform no longer has.
    """
    snapshot_at = timezone.now()  # taken before reading: an earlier read never looks newer
    docs: list[documents.MirrorDocument] = []
    if kind == Kind.TENANT:
        tenant = Tenant.objects.select_related("tier").filter(pk=tenant_id).first()
        if tenant is None:
            return 0  # its subcollections are the operator's to wipe (docs/firestore.md)
        docs.append(tenant_mirror_document(tenant, snapshot_at=snapshot_at))
    elif kind == Kind.CONVERSATION:
        conversation = (Conversation.objects.select_related("contact")
                        .filter(pk=object_id, tenant_id=tenant_id).first())
        if conversation is None:
            return _delete_conversation(tenant_id=tenant_id, conversation_id=object_id)
        docs.append(conversation_mirror_document(conversation, snapshot_at=snapshot_at))
    elif kind == Kind.MESSAGE:
        message = Message.objects.select_related("contact", "media").filter(pk=object_id, tenant_id=tenant_id).first()
        if message is None:
            return 0  # deleted with its conversation, whose job deletes the documents
        conversation = Conversation.objects.select_related("contact").get(pk=message.conversation_id)
        docs.append(documents.message_document(message, snapshot_at=snapshot_at))
        docs.append(conversation_mirror_document(conversation, snapshot_at=snapshot_at))
    else:
        raise ValueError(f"unknown mirror kind {kind!r}")
    if kind != Kind.TENANT and not _tenant_ever_synced(tenant_id):
        # The tenant document is written with the tenant's first mirrored change,
        # so an app that signs in finds its tenant, not only conversations.
        tenant = Tenant.objects.select_related("tier").get(pk=tenant_id)
        docs.append(tenant_mirror_document(tenant, snapshot_at=snapshot_at))
    return client.write_guarded(docs, force=force)


def _delete_conversation(*, tenant_id: int, conversation_id: int) -> int:
    path = documents.conversation_path(tenant_id, conversation_id)
    message_paths = [f"{path}/messages/{doc_id}" for doc_id in client.document_ids(f"{path}/messages")]
    return client.delete([*message_paths, path])


def _tenant_ever_synced(tenant_id: int) -> bool:
    return MirrorStatus.objects.filter(tenant_id=tenant_id, last_synced_at__isnull=False).exists()


def tenant_mirror_document(tenant: Tenant, *, snapshot_at: datetime) -> documents.MirrorDocument:
    session = WhatsAppSession.objects.filter(tenant_id=tenant.pk).first()
    return documents.tenant_document(tenant, session=session, snapshot_at=snapshot_at)


def conversation_mirror_document(conversation: Conversation, *, snapshot_at: datetime,
                                 last_message: Message | None = None) -> documents.MirrorDocument:
    if last_message is None:
        last_message = Message.objects.filter(conversation_id=conversation.pk).order_by("-pk").first()
    return documents.conversation_document(conversation, last_message=last_message,
                                           active_agent=active_agent_for(conversation), snapshot_at=snapshot_at)


def active_agent_for(conversation: Conversation) -> dict | None:
    """Who answers the conversation, as {id, name, kind, owner}: its agent state, if it has one.

    The mirror sits above agents (docs/architecture.md), so it reads the state
    directly; the environment has no say in which code runs here.
    """
    found = agent_selectors.state_of(conversation=conversation)
    if found is None:
        return None
    agent = getattr(found, "active_agent", found)
    owner = str(getattr(found, "owner", "") or "")
    if agent is None and not owner:
        return None
    return {
        "id": getattr(agent, "pk", None),
        "name": str(getattr(agent, "name", "") or ""),
        "kind": str(getattr(agent, "kind", "") or ""),
        "owner": owner,
    }


# --- status and dead letters -----------------------------------------------------------


def _status_for(tenant_id: int) -> None:
    MirrorStatus.objects.get_or_create(tenant_id=tenant_id)


def _record_success(*, tenant_id: int, kind: str, object_id: int, event: dict | None) -> None:
    now = timezone.now()
    _status_for(tenant_id)
    changes: dict = {"last_synced_at": now, "consecutive_failures": 0}
    event_at = parse_datetime(event["created_at"]) if event and event.get("created_at") else None
    if event_at is not None:
        changes.update(last_event_id=event["id"], last_event_type=event["type"], last_event_at=event_at,
                       lag_seconds=max(0.0, (now - event_at).total_seconds()))
    MirrorStatus.objects.filter(tenant_id=tenant_id).update(**changes)
    DeadLetter.objects.filter(kind=kind, object_id=object_id, resolved_at__isnull=True).update(resolved_at=now)


def _record_failure(*, tenant_id: int, error: Exception) -> None:
    _status_for(tenant_id)
    MirrorStatus.objects.filter(tenant_id=tenant_id).update(
        consecutive_failures=F("consecutive_failures") + 1,
        total_failures=F("total_failures") + 1,
        last_error=f"{type(error).__name__}: {error}"[:2000],
        last_error_at=timezone.now(),
    )


def _dead_letter(*, kind: str, tenant_id: int, object_id: int, event: dict | None, attempts: int,
                 error: Exception) -> DeadLetter:
    logger.error("mirror: %s %s of tenant %s dead-lettered after %s attempts: %s", kind, object_id, tenant_id,
                 attempts, error)
    return DeadLetter.objects.create(
        tenant_id=tenant_id, kind=kind, object_id=object_id, attempts=attempts,
        event_id=(event or {}).get("id", "") or "", event_type=(event or {}).get("type", "") or "",
        error=f"{type(error).__name__}: {error}"[:4000],
    )


@transaction.atomic
def retry_dead_letter(*, dead_letter: DeadLetter) -> None:
    """Run the write again from attempt one, after commit. The letter resolves when it succeeds."""

    DeadLetter.objects.filter(pk=dead_letter.pk).update(retried_at=timezone.now())
    enqueue_on_commit("mirror.jobs.mirror_object", str(dead_letter.kind), dead_letter.tenant_id, dead_letter.object_id,
                      None, 1, queue=settings.FIRESTORE_MIRROR_QUEUE)
