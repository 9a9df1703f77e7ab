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
conversations, accept, batches (a tenant's due sends in one job), delivery
(pacing and Meta policy), statuses, intake,
sweeper; and the support team's side (docs/inbox.md): assignment, lifecycle
(resolve, reopen, snooze), notes, labels, canned replies, contacts, with the
history and events of those changes in activity.
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
from messaging.services.assignment import (
    assign_conversation,
    auto_assign,
    inbox_settings,
    member_user,
    update_inbox_settings,
)
from messaging.services.batches import deliver_batch, schedule_batch
from messaging.services.canned import create_canned_reply, delete_canned_reply, update_canned_reply
from messaging.services.contacts import contact_data, update_contact
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
from messaging.services.labels import create_label, delete_label, set_conversation_labels
from messaging.services.lifecycle import (
    reopen_conversation,
    reopen_on_inbound,
    resolve_conversation,
    snooze_conversation,
    wake_snoozed,
)
from messaging.services.notes import create_note, delete_note
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
    "assign_conversation",
    "auto_assign",
    "contact_data",
    "conversation_event_data",
    "create_canned_reply",
    "create_label",
    "create_note",
    "delete_canned_reply",
    "delete_label",
    "delete_note",
    "deliver_batch",
    "deliver_message",
    "fail_message",
    "get_or_create_contact",
    "get_or_create_conversation",
    "handle_bridge_events",
    "inbox_settings",
    "ingest_events",
    "mark_conversation_read",
    "member_user",
    "message_fields",
    "message_representation",
    "normalise_recipient",
    "pause_tenant_sends",
    "postpone_message",
    "record_sent",
    "reopen_conversation",
    "reopen_on_inbound",
    "request_hash",
    "resume_tenant",
    "resolve_conversation",
    "schedule_batch",
    "schedule_delivery",
    "send_message",
    "set_conversation_labels",
    "snooze_conversation",
    "sweep",
    "sweep_messages",
    "sweep_pending_statuses",
    "tenant_send_pause_seconds",
    "update_canned_reply",
    "update_contact",
    "update_inbox_settings",
    "wake_snoozed",
]
