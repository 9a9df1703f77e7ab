"""Pure mapping from database rows to the Firestore documents a tenant's app reads.

No I/O here: callers load the rows (selectors below in services/backfill) and
the client writes what these functions return. Paths use the platform's ids,
so writing the same row twice writes the same document.

Layout (docs/firestore.md):
    tenants/{tenant}
    tenants/{tenant}/conversations/{conversation}
    tenants/{tenant}/conversations/{conversation}/messages/{message}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from messaging.services import message_fields

PREVIEW_LENGTH = 120
# Fields that say when a document was built, not what it says: left out of --verify.
VOLATILE_FIELDS = frozenset({"snapshot_at"})


@dataclass(frozen=True)
class MirrorDocument:
    path: str
    data: dict[str, Any]
    # Written only when these fields, compared as a tuple, are >= the stored
    # document's: a job that read the row earlier cannot overwrite a newer state.
    guard: tuple[str, ...]

    def guard_value(self, data: dict[str, Any] | None = None) -> tuple:
        source = self.data if data is None else data
        return tuple(source.get(name) for name in self.guard)


def tenant_path(tenant_id: int) -> str:
    return f"tenants/{tenant_id}"


def conversation_path(tenant_id: int, conversation_id: int) -> str:
    return f"{tenant_path(tenant_id)}/conversations/{conversation_id}"


def message_path(tenant_id: int, conversation_id: int, message_id: int) -> str:
    return f"{conversation_path(tenant_id, conversation_id)}/messages/{message_id}"


def tenant_document(tenant, *, session, snapshot_at: datetime) -> MirrorDocument:
    """`session` is the tenant's WhatsAppSession or None."""
    return MirrorDocument(
        path=tenant_path(tenant.pk),
        data={
            "id": tenant.pk,
            "name": tenant.name,
            "slug": tenant.slug,
            "status": tenant.status,
            "tier": {"name": tenant.tier.name, "display_name": tenant.tier.display_name},
            "session": None if session is None else {
                "status": session.status,
                "status_changed_at": session.status_changed_at,
            },
            "snapshot_at": snapshot_at,
        },
        guard=("snapshot_at",),
    )


def preview(message) -> str:
    text = (message.text or "").strip()
    if text:
        return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"
    return f"[{message.type}]"


def conversation_document(conversation, *, last_message, active_agent: dict | None,
                          snapshot_at: datetime) -> MirrorDocument:
    """`conversation.contact` must be loaded; `last_message` is its newest Message or None."""
    contact = conversation.contact
    return MirrorDocument(
        path=conversation_path(conversation.tenant_id, conversation.pk),
        data={
            "id": conversation.pk,
            "contact": {"id": contact.pk, "wa_id": contact.wa_id, "name": contact.name},
            "active_agent": active_agent,
            "last_message": None if last_message is None else {
                "id": last_message.pk,
                "direction": last_message.direction,
                "type": last_message.type,
                "preview": preview(last_message),
                "status": last_message.status,
                "at": last_message.provider_timestamp or last_message.accepted_at,
            },
            "last_message_at": conversation.last_message_at,
            "last_inbound_at": conversation.last_inbound_at,
            "unread_count": conversation.unread_count,
            "created_at": conversation.created_at,
            "snapshot_at": snapshot_at,
        },
        guard=("snapshot_at",),
    )


def message_document(message, *, snapshot_at: datetime) -> MirrorDocument:
    """The message as the REST API and the webhooks show it (one shape), plus what the
    mirror needs to order writes. `message.contact` should be loaded."""
    return MirrorDocument(
        path=message_path(message.tenant_id, message.conversation_id, message.pk),
        data={
            **message_fields(message),
            "payload": firestore_safe(message.payload or {}),
            "status_rank": message.status_rank,
            "provider_timestamp": message.provider_timestamp,
            "snapshot_at": snapshot_at,
        },
        # Rank first: a status never goes backwards, whatever order the jobs ran in.
        guard=("status_rank", "snapshot_at"),
    )


def firestore_safe(value: Any) -> Any:
    """Firestore rejects an array directly inside an array; such inner arrays are stored as JSON text."""
    if isinstance(value, dict):
        return {str(k): firestore_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json.dumps(v) if isinstance(v, list) else firestore_safe(v) for v in value]
    return value


def differences(expected: dict[str, Any], actual: dict[str, Any] | None) -> list[str]:
    """Human-readable field differences between what the database says and what Firestore holds."""
    if actual is None:
        return ["missing"]
    lines = []
    for key in sorted((set(expected) | set(actual)) - VOLATILE_FIELDS):
        want, have = expected.get(key), actual.get(key)
        if _normalise(want) != _normalise(have):
            lines.append(f"{key}: firestore={have!r} database={want!r}")
    return lines


def _normalise(value: Any) -> Any:
    # Firestore hands datetimes back as its own subclass, rounded to microseconds;
    # comparing ISO strings treats equal instants as equal.
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value
