"""Backfill, repair and verification of a tenant's mirror (`manage.py firestore_sync`).

Resumable: a SyncCheckpoint per (tenant, --since) records the last
conversation and message written, so a run that was interrupted continues
where it stopped. Idempotent: documents are keyed by the platform's ids and
written through the same guarded transaction as the jobs, so a backfill
racing live jobs cannot move a status backwards either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Max, Q
from google.api_core.retry import Retry, if_exception_type
from django.utils import timezone

from messaging.models import Conversation, Message
from mirror import client, documents, services
from mirror.models import MirrorStatus, SyncCheckpoint
from tenants.models import Tenant

Progress = Callable[[str, int, int], None]  # (stage, done, total)



def _retrying(func, retry_for: float):
    """The command waits out a short blip (gRPC reconnects with backoff after an
    outage) for `retry_for` seconds before it gives up and leaves its checkpoint."""
    if retry_for <= 0:
        return func
    return Retry(predicate=if_exception_type(*client.TRANSIENT_ERRORS), initial=0.5, maximum=5.0,
                 timeout=retry_for)(func)


@dataclass
class SyncResult:
    tenant: str
    written: int = 0
    resumed: bool = False


@dataclass
class VerifyResult:
    tenant: str
    checked: int = 0
    differing: dict[str, list[str]] = field(default_factory=dict)


def _conversations(tenant: Tenant, since: datetime | None):
    qs = Conversation.objects.filter(tenant=tenant).select_related("contact")
    if since is not None:
        qs = qs.filter(Q(last_message_at__gte=since) | Q(created_at__gte=since))
    return qs.order_by("pk")


def _messages(tenant: Tenant, since: datetime | None):
    qs = Message.objects.filter(tenant=tenant).select_related("contact", "media")
    if since is not None:
        qs = qs.filter(accepted_at__gte=since)
    return qs.order_by("pk")


def _last_messages(conversation_ids: list[int]) -> dict[int, Message]:
    latest: dict[int, Message] = {}
    newest_ids = (Message.objects.filter(conversation_id__in=conversation_ids).values("conversation_id")
                  .order_by().annotate(newest=Max("pk"))
                  .values_list("newest", flat=True))
    for message in Message.objects.filter(pk__in=list(newest_ids)):
        latest[message.conversation_id] = message
    return latest


def sync_tenant(*, tenant: Tenant, since: datetime | None = None, batch_size: int = 200, restart: bool = False,
                force: bool = False, retry_for: float = 60.0, progress: Progress | None = None) -> SyncResult:
    """Write the tenant's documents from the database, resuming an unfinished run with the same --since."""
    _write = _retrying(client.write_guarded, retry_for)
    progress = progress or (lambda stage, done, total: None)
    batch_size = max(1, min(batch_size, client.BATCH_LIMIT))
    checkpoint = None if restart else (SyncCheckpoint.objects.filter(tenant=tenant, since=since,
                                                                      finished_at__isnull=True).first())
    result = SyncResult(tenant=tenant.slug, resumed=checkpoint is not None)
    if checkpoint is None:
        checkpoint = SyncCheckpoint.objects.create(tenant=tenant, since=since)

    result.written += _write(
        [services.tenant_mirror_document(tenant, snapshot_at=timezone.now())], force=force)

    conversations = _conversations(tenant, since)
    total, done = conversations.count(), conversations.filter(pk__lte=checkpoint.last_conversation_id).count()
    progress("conversations", done, total)
    while True:
        chunk = list(conversations.filter(pk__gt=checkpoint.last_conversation_id)[:batch_size])
        if not chunk:
            break
        snapshot_at = timezone.now()
        latest = _last_messages([c.pk for c in chunk])
        docs = [documents.conversation_document(c, last_message=latest.get(c.pk),
                                                active_agent=services.active_agent_for(c), snapshot_at=snapshot_at)
                for c in chunk]
        result.written += _write(docs, force=force)
        done += len(chunk)
        _advance(checkpoint, last_conversation_id=chunk[-1].pk, written=result.written)
        progress("conversations", done, total)

    messages = _messages(tenant, since)
    total, done = messages.count(), messages.filter(pk__lte=checkpoint.last_message_id).count()
    progress("messages", done, total)
    while True:
        chunk = list(messages.filter(pk__gt=checkpoint.last_message_id)[:batch_size])
        if not chunk:
            break
        snapshot_at = timezone.now()
        result.written += _write(
            [documents.message_document(m, snapshot_at=snapshot_at) for m in chunk], force=force)
        done += len(chunk)
        _advance(checkpoint, last_message_id=chunk[-1].pk, written=result.written)
        progress("messages", done, total)

    now = timezone.now()
    SyncCheckpoint.objects.filter(pk=checkpoint.pk).update(finished_at=now)
    MirrorStatus.objects.get_or_create(tenant=tenant)
    MirrorStatus.objects.filter(tenant=tenant).update(last_synced_at=now, consecutive_failures=0)
    return result


def _advance(checkpoint: SyncCheckpoint, **changes) -> None:
    for name, value in changes.items():
        setattr(checkpoint, name, value)
    checkpoint.save(update_fields=[*changes, "updated_at"])


def verify_tenant(*, tenant: Tenant, since: datetime | None = None, batch_size: int = 200,
                  retry_for: float = 60.0, progress: Progress | None = None) -> VerifyResult:
    """Compare the tenant's documents with what the database says; nothing is written.

    Reports documents that differ, are missing, or exist in Firestore without
    a row (extra conversations and messages, found by listing each collection).
    """
    progress = progress or (lambda stage, done, total: None)
    result = VerifyResult(tenant=tenant.slug)
    _read = _retrying(client.get_documents, retry_for)

    def compare(expected: list[documents.MirrorDocument]) -> None:
        stored = _read([doc.path for doc in expected])
        for doc in expected:
            lines = documents.differences(doc.data, stored[doc.path])
            if lines:
                result.differing[doc.path] = lines
        result.checked += len(expected)

    now = timezone.now()
    compare([services.tenant_mirror_document(tenant, snapshot_at=now)])
    conversations = _conversations(tenant, since)
    total, done = conversations.count(), 0
    known_conversations: set[str] = set()
    for start in range(0, total, batch_size):
        chunk = list(conversations[start:start + batch_size])
        latest = _last_messages([c.pk for c in chunk])
        compare([documents.conversation_document(c, last_message=latest.get(c.pk),
                                                 active_agent=services.active_agent_for(c), snapshot_at=now)
                 for c in chunk])
        known_conversations.update(str(c.pk) for c in chunk)
        done += len(chunk)
        progress("verify conversations", done, total)

    messages = _messages(tenant, since)
    total, done = messages.count(), 0
    for start in range(0, total, batch_size):
        chunk = list(messages[start:start + batch_size])
        compare([documents.message_document(m, snapshot_at=now) for m in chunk])
        done += len(chunk)
        progress("verify messages", done, total)

    if since is None:
        _report_extra(tenant, known_conversations, result)
    return result


def _report_extra(tenant: Tenant, known_conversations: set[str], result: VerifyResult) -> None:
    base = documents.tenant_path(tenant.pk)
    for conversation_id in client.document_ids(f"{base}/conversations"):
        path = f"{base}/conversations/{conversation_id}"
        if conversation_id not in known_conversations:
            result.differing[path] = ["extra: no such conversation in the database"]
            continue
        ids = set(client.document_ids(f"{path}/messages"))
        known = {str(pk) for pk in Message.objects.filter(tenant=tenant, conversation_id=conversation_id)
                 .values_list("pk", flat=True)}
        for message_id in sorted(ids - known):
            result.differing[f"{path}/messages/{message_id}"] = ["extra: no such message in the database"]
