"""Contacts, conversations, messages, and the tenants' outgoing webhooks.

The database is the source of truth for every message: Redis only carries
pointers (job ids) to rows, so an emptied Redis or a killed worker loses
nothing the sweeper cannot find again.
"""

import secrets

from django.db import models
from django.db.models import Q

from tenants.models import Tenant
from waplatform.fields import EncryptedTextField


class Contact(models.Model):
    """Someone a tenant talks to. `wa_id` is E.164 digits (1:1) or a full chat id (groups, @lid)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="contacts")
    wa_id = models.CharField(max_length=128)
    name = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["tenant", "wa_id"], name="one_contact_per_tenant_wa_id")]

    def __str__(self) -> str:
        return f"{self.name or self.wa_id}"


class Conversation(models.Model):
    """One thread per (tenant, contact). Agents (a later issue) attach here."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="conversations")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    created_at = models.DateTimeField(auto_now_add=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    # WhatsApp's 24 h customer-service window opens on each inbound message, never on ours.
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    unread_count = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-last_message_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "contact"], name="one_conversation_per_tenant_contact")
        ]
        indexes = [models.Index(fields=["tenant", "-last_message_at"])]

    def __str__(self) -> str:
        return f"conversation {self.pk} with {self.contact}"


class Message(models.Model):
    class Direction(models.TextChoices):
        IN = "in"
        OUT = "out"

    class Status(models.TextChoices):
        QUEUED = "queued"
        SENDING = "sending"
        SENT = "sent"
        DELIVERED = "delivered"
        READ = "read"
        PLAYED = "played"
        FAILED = "failed"
        RECEIVED = "received"

    # Status only moves up this ladder (statuses arrive out of order, "delivered"
    # may be skipped). failed is terminal; received is where inbound starts.
    RANK = {
        Status.QUEUED: 0,
        Status.SENDING: 1,
        Status.RECEIVED: 2,
        Status.SENT: 2,
        Status.DELIVERED: 3,
        Status.READ: 4,
        Status.PLAYED: 5,
        Status.FAILED: 9,
    }
    FINAL_OUTBOUND = [Status.SENT, Status.DELIVERED, Status.READ, Status.PLAYED, Status.FAILED]

    class Type(models.TextChoices):
        TEXT = "text"
        IMAGE = "image"
        DOCUMENT = "document"
        AUDIO = "audio"
        VIDEO = "video"
        LOCATION = "location"
        REACTION = "reaction"
        TEMPLATE = "template"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="messages")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    # Not constrained to Type: inbound carries whatever WhatsApp sends (sticker, interactive...).
    type = models.CharField(max_length=32, default=Type.TEXT)
    text = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="Media, location, template, reaction details.")
    reply_to = models.CharField(max_length=255, blank=True, help_text="Provider id of the message replied to.")

    status = models.CharField(max_length=16, choices=Status.choices)
    status_rank = models.PositiveSmallIntegerField(default=0)
    provider_message_id = models.CharField(max_length=255, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error_reason = models.TextField(blank=True)

    idempotency_key = models.CharField(max_length=255, blank=True)
    request_hash = models.CharField(max_length=64, blank=True)

    pricing_category = models.CharField(max_length=32, blank=True)
    pricing_model = models.CharField(max_length=32, blank=True)
    pricing_type = models.CharField(max_length=32, blank=True)

    accepted_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    provider_timestamp = models.DateTimeField(null=True, blank=True)

    attempts = models.PositiveIntegerField(default=0, help_text="Bridge calls made.")
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # While `sending`, no other job may send it until the lease ends (a killed
    # worker's message becomes sendable again when it does).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # A pacing reservation: the job that runs at this time sends without asking again.
    paced_until = models.DateTimeField(null=True, blank=True)
    sent_via_slot_id = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "provider_message_id"],
                condition=~Q(provider_message_id=""),
                name="one_message_per_tenant_provider_id",
            ),
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="one_message_per_tenant_idempotency_key",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "conversation", "-id"]),
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["tenant", "status", "-id"]),
        ]

    def __str__(self) -> str:
        return f"message {self.pk} ({self.direction}, {self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_OUTBOUND or self.status == self.Status.RECEIVED


class PendingStatus(models.Model):
    """A status for a provider id we do not know yet: acks can beat our own `sent` record."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    provider_message_id = models.CharField(max_length=255)
    status = models.CharField(max_length=16)
    error_code = models.CharField(max_length=64, blank=True)
    error_reason = models.TextField(blank=True)
    pricing = models.JSONField(null=True, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name_plural = "pending statuses"
        indexes = [models.Index(fields=["tenant", "provider_message_id"])]


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class WebhookEndpoint(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="webhook_endpoints")
    url = models.URLField(max_length=2000)
    # Encrypted at rest; recoverable because every delivery is signed with it.
    secret = EncryptedTextField(default=new_webhook_secret)
    event_types = models.JSONField(default=list, help_text='Event types to deliver, or ["*"] for all.')
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["tenant", "active"])]

    def __str__(self) -> str:
        return self.url

    def wants(self, event_type: str) -> bool:
        return "*" in self.event_types or event_type in self.event_types


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        SUCCEEDED = "succeeded"
        FAILED = "failed"  # the last attempt failed; another is scheduled at next_attempt_at
        DEAD = "dead"  # no more attempts; replay from the admin, the API or `replay_webhooks`

    OPEN = [Status.PENDING, Status.FAILED]

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_id = models.CharField(max_length=64)
    event_type = models.CharField(max_length=64)
    payload = models.JSONField()
    # Deliveries sharing (endpoint, ordering_key) go out strictly in id order.
    ordering_key = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    replayed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="one_delivery_per_endpoint_event")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["endpoint", "ordering_key", "status"]),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id} → {self.endpoint_id} ({self.status})"
