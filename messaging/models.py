"""Contacts, conversations, messages, and the tenants' outgoing webhooks.

The database is the source of truth for every message: Redis only carries
pointers (job ids) to rows, so an emptied Redis or a killed worker loses
nothing the sweeper cannot find again.
"""

import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from tenants.models import Tenant
from waplatform.fields import EncryptedTextField


# pooling.bridges.sandbox.state.ECHO_PREFIX (a test keeps them equal); models import no bridge code.
SANDBOX_ECHO_PREFIX = "1555000"


class Contact(models.Model):
    """Someone a tenant talks to. `wa_id` is E.164 digits (1:1) or a full chat id (groups, @lid)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="contacts")
    wa_id = models.CharField(max_length=128)
    name = models.CharField(max_length=255, blank=True)
    # Set when a member names the contact: WhatsApp's push name then no longer overwrites it.
    name_edited = models.BooleanField(default=False)
    attributes = models.JSONField(default=dict, blank=True, help_text="The tenant's own fields, {name: value}.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [models.UniqueConstraint(fields=["tenant", "wa_id"], name="one_contact_per_tenant_wa_id")]

    def __str__(self) -> str:
        return f"{self.name or self.wa_id}"

    @property
    def is_sandbox(self) -> bool:
        """The sandbox bridge's echo numbers (docs/bridges.md): fictional +1 555 numbers, never a phone."""
        return self.wa_id.startswith(SANDBOX_ECHO_PREFIX)


class Conversation(models.Model):
    """One thread per (tenant, contact). Agents attach in their app (ConversationState)."""

    class Status(models.TextChoices):
        OPEN = "open"
        RESOLVED = "resolved"
        SNOOZED = "snoozed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="conversations")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="conversations")
    created_at = models.DateTimeField(auto_now_add=True)
    last_message_at = models.DateTimeField(null=True, blank=True)
    # WhatsApp's 24 h customer-service window opens on each inbound message, never on ours.
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    unread_count = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    snoozed_until = models.DateTimeField(null=True, blank=True)
    # A person of the tenant (a member); who it is is checked by the assignment service.
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="assigned_conversations")
    labels = models.ManyToManyField("Label", blank=True, related_name="conversations")

    class Meta:
        ordering = ["-last_message_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "contact"], name="one_conversation_per_tenant_contact")
        ]
        indexes = [
            models.Index(fields=["tenant", "-last_message_at"]),
            models.Index(fields=["tenant", "status", "-last_message_at"], name="conversation_tenant_status"),
            models.Index(fields=["tenant", "assignee"], name="conversation_tenant_assignee"),
            models.Index(fields=["status", "snoozed_until"], name="conversation_snoozed_until"),
        ]

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
    # The process holding the lease (waplatform.lease_owners): a lease whose owner died
    # ends at once (messaging.services.recovery) rather than when it runs out.
    lease_owner = models.CharField(max_length=300, blank=True, default="")
    # A pacing reservation: the job that runs at this time sends without asking again.
    paced_until = models.DateTimeField(null=True, blank=True)
    sent_via_slot_id = models.PositiveIntegerField(null=True, blank=True)
    # The file an inbound media message brought, or an outbound one sends by media_id (docs/media.md).
    media = models.ForeignKey("MediaFile", null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")

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


class MediaFile(models.Model):
    """One media file of a tenant: inbound (fetched from the bridge by a job) or uploaded.

    The bytes live in the "media" storage under a key made of the tenant and the
    sha256, so a file a tenant receives (or uploads) twice is stored once: rows
    are per message, bytes per content. A blob is deleted with its last row.
    """

    class Status(models.TextChoices):
        PENDING = "pending"  # inbound, not fetched yet
        STORED = "stored"
        FAILED = "failed"  # refused (size, type) or the bridge never gave it; `reason` says which
        DELETED = "deleted"  # past the tier's retention; the bytes are gone

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="media_files")
    # The inbound message it arrived with; null for uploads (messages point at it through Message.media).
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, help_text="image, video, audio, document or sticker")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True)
    content_type = models.CharField(max_length=255, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    original_filename = models.CharField(max_length=255, blank=True)
    storage_key = models.CharField(max_length=512, blank=True)
    thumbnail_key = models.CharField(max_length=512, blank=True)
    # Where the bridge keeps it (WAHA media dict, Cloud media id...), for the fetch job.
    source = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    stored_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
        indexes = [
            models.Index(fields=["tenant", "sha256"]),
            models.Index(fields=["status", "next_attempt_at"]),
        ]

    def __str__(self) -> str:
        return f"media {self.pk} ({self.kind}, {self.status})"


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
        return self.types_want(self.event_types, event_type)

    @staticmethod
    def types_want(event_types, event_type: str) -> bool:
        """For a subscription held without its row (messaging.webhooks_out keeps them per process)."""
        return "*" in event_types or event_type in event_types


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


# --- the support team's side of conversations (docs/inbox.md) ---------------------------


class Label(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="labels")
    name = models.CharField(max_length=64)
    color = models.CharField(max_length=16, blank=True, help_text="A CSS colour, e.g. #1f93ff.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="one_label_name_per_tenant")]

    def __str__(self) -> str:
        return self.name


class Note(models.Model):
    """A private note in a conversation: members read it; the contact, the bridge and webhooks never do."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    body = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        indexes = [models.Index(fields=["conversation", "id"])]

    def __str__(self) -> str:
        return f"note {self.pk} in conversation {self.conversation_id}"


class CannedReply(models.Model):
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="canned_replies")
    short_code = models.CharField(max_length=32, help_text="Typed after / in the inbox's reply box.")
    content = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["short_code"]
        verbose_name_plural = "canned replies"
        constraints = [models.UniqueConstraint(fields=["tenant", "short_code"], name="one_canned_reply_per_code")]

    def __str__(self) -> str:
        return f"/{self.short_code}"


class InboxSettings(models.Model):
    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="inbox_settings")
    auto_assign = models.BooleanField(
        default=False, help_text="New and reopened unassigned conversations go round-robin to online members.")
    # The round-robin's position: the next assignment goes to the online member after this one.
    last_assigned_user_id = models.PositiveIntegerField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "inbox settings"

    def __str__(self) -> str:
        return f"inbox settings of {self.tenant}"


class ConversationActivity(models.Model):
    """What happened to a conversation besides its messages (the contact panel's history)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="activities")
    kind = models.CharField(max_length=32, help_text="The event type without its prefix: assigned, resolved, ...")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pk"]
        verbose_name_plural = "conversation activities"
        indexes = [models.Index(fields=["conversation", "-id"])]
