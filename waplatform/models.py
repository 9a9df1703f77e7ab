from django.db import models


class OutboxEvent(models.Model):
    """A domain event, written in the same transaction as the change it describes.

    The row is the promise that every subscriber hears of the event: it is
    handed to them right after commit, and the relay (waplatform.outbox) hands
    whatever is still `pending` again until each has taken it.
    """

    event_id = models.UUIDField(unique=True)
    tenant_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    type = models.CharField(max_length=64)
    # Events with the same key reach each subscriber in id order (a conversation's events).
    ordering_key = models.CharField(max_length=64, blank=True, default="")
    envelope = models.JSONField()
    pending = models.JSONField(default=list, help_text="Subscribers that have not taken the event yet.")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["next_attempt_at"], name="outbox_undelivered_due",
                         condition=models.Q(delivered_at__isnull=True)),
            models.Index(fields=["ordering_key", "id"], name="outbox_undelivered_by_key",
                         condition=models.Q(delivered_at__isnull=True)),
            models.Index(fields=["delivered_at"], name="outbox_delivered_at",
                         condition=models.Q(delivered_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"
