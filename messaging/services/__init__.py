"""Writes for messages: accept a send, deliver it, ingest what bridges report.

Rules the modules keep (docs/messaging.md):
- the database is the source of truth; a job or Redis key only points at a row;
- no network I/O inside a transaction (bridge calls, webhooks, Redis enqueues
  run after commit);
- status only moves up Message.RANK, applied with a conditional UPDATE, so two
  acks racing each other can never move a message backwards;
- jobs are named by dotted path, never imported: messaging.jobs calls these
  functions, not the other way round.

Callers use `from messaging import services` and the names below; the
modules are by topic: payloads (the one message shape and its events),
conversations, accept, delivery (pacing and Meta policy), statuses, intake,
sweeper.
"""

from messaging.services.accept import (
    Accepted,
    IdempotencyConflict,
    NoWhatsAppSession,
    SendRefused,
    TenantSuspended,
    normalise_recipient,
    request_hash,
    send_message,
)
from messaging.services.conversations import (
    get_or_create_contact,
    get_or_create_conversation,
    mark_conversation_read,
)
from messaging.services.delivery import (
    REENGAGEMENT_CODE,
    SPAM_RATE_LIMIT_CODE,
    deliver_message,
    pause_tenant_sends,
    postpone_message,
    schedule_delivery,
    tenant_send_pause_seconds,
)
from messaging.services.intake import IngestResult, handle_bridge_events, ingest_events
from messaging.services.payloads import conversation_event_data, message_fields, message_representation
from messaging.services.resume import resume_tenant
from messaging.services.statuses import (
    STATUS_TIME_FIELD,
    apply_pending_statuses,
    apply_status,
    fail_message,
    record_sent,
)
from messaging.services.sweeper import SweepReport, sweep, sweep_messages, sweep_pending_statuses

__all__ = [
    "Accepted",
    "IdempotencyConflict",
    "IngestResult",
    "NoWhatsAppSession",
    "REENGAGEMENT_CODE",
    "SPAM_RATE_LIMIT_CODE",
    "STATUS_TIME_FIELD",
    "SendRefused",
    "SweepReport",
    "TenantSuspended",
    "apply_pending_statuses",
    "apply_status",
    "conversation_event_data",
    "deliver_message",
    "fail_message",
    "get_or_create_contact",
    "get_or_create_conversation",
    "handle_bridge_events",
    "ingest_events",
    "mark_conversation_read",
    "message_fields",
    "message_representation",
    "normalise_recipient",
    "pause_tenant_sends",
    "postpone_message",
    "record_sent",
    "request_hash",
    "resume_tenant",
    "schedule_delivery",
    "send_message",
    "sweep",
    "sweep_messages",
    "sweep_pending_statuses",
    "tenant_send_pause_seconds",
]
