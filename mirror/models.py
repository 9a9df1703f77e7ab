"""Bookkeeping of the Firestore mirror. The mirrored data itself lives in the
messaging tables (the source of truth); these rows say how far Firestore is
behind them and what could not be written.
"""

from django.db import models

from tenants.models import Tenant


class Kind(models.TextChoices):
    TENANT = "tenant"
    CONVERSATION = "conversation"
    MESSAGE = "message"


class MirrorStatus(models.Model):
    """How far a tenant's mirror is behind the database."""

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, primary_key=True, related_name="mirror_status")
    last_event_id = models.CharField(max_length=64, blank=True)
    last_event_type = models.CharField(max_length=64, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True, help_text="When the last mirrored event happened.")
    last_synced_at = models.DateTimeField(null=True, blank=True, help_text="When Firestore last accepted a write.")
    lag_seconds = models.FloatField(null=True, blank=True, help_text="Event to Firestore write, last time.")
    consecutive_failures = models.PositiveIntegerField(default=0)
    total_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "mirror statuses"

    def __str__(self) -> str:
        return f"mirror of {self.tenant}"


class Backlog(models.Model):
    """A mirror job that could not be enqueued (Redis down, queue full); the sweep enqueues it later."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    object_id = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        # Repeated failures for one object collapse: the job re-reads the row anyway.
        constraints = [models.UniqueConstraint(fields=["kind", "object_id"], name="one_backlog_per_object")]


class DeadLetter(models.Model):
    """A mirror write that failed its last attempt. Retry it from the admin once Firestore is healthy."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    object_id = models.BigIntegerField()
    event_id = models.CharField(max_length=64, blank=True)
    event_type = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    retried_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True, help_text="A later write of the object succeeded.")

    class Meta:
        ordering = ["-pk"]
        indexes = [models.Index(fields=["kind", "object_id", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.object_id} ({'resolved' if self.resolved_at else 'open'})"


class SyncCheckpoint(models.Model):
    """Where `firestore_sync` got to for one tenant and --since, so an interrupted run resumes."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    since = models.DateTimeField(null=True, blank=True)
    last_conversation_id = models.BigIntegerField(default=0)
    last_message_id = models.BigIntegerField(default=0)
    written = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-pk"]
