import secrets

from django.db import models
from django.db.models import Q

from tenants.models import Tenant, Tier
from waplatform.fields import EncryptedTextField


def _new_secret() -> str:
    return secrets.token_hex(32)


class Slot(models.Model):
    """One bridge worker: hosts up to `capacity` WhatsApp sessions of one tier."""

    class State(models.TextChoices):
        PROVISIONING = "provisioning"
        READY = "ready"
        DEGRADED = "degraded"
        DOWN = "down"
        DRAINING = "draining"
        RETIRED = "retired"

    class Dialect(models.TextChoices):
        WAHA = "waha"
        CLOUD = "cloud"
        SANDBOX = "sandbox"

    class Provisioner(models.TextChoices):
        LOCAL = "local"
        STATIC = "static"

    LIVE_STATES = [State.PROVISIONING, State.READY, State.DEGRADED, State.DOWN, State.DRAINING]
    # Where a new session may be placed: a provisioning slot takes tenants at
    # once so a burst of starts fills it instead of provisioning one slot each.
    PLACEABLE_STATES = [State.PROVISIONING, State.READY]

    name = models.CharField(max_length=64, blank=True)
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="slots")
    dialect = models.CharField(max_length=16, choices=Dialect.choices, default=Dialect.SANDBOX)
    provisioner = models.CharField(max_length=16, choices=Provisioner.choices, default=Provisioner.LOCAL)
    base_url = models.URLField(blank=True)
    # Encrypted at rest: the bridge key (a Cloud slot's Meta access token) and the HMAC secret.
    api_key = EncryptedTextField(blank=True, help_text="Key the bridge server expects (X-Api-Key).")
    webhook_secret = EncryptedTextField(default=_new_secret, editable=False)
    capacity = models.PositiveIntegerField()
    used = models.PositiveIntegerField(default=0, help_text="Live assignments; changed only under the row lock.")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PROVISIONING, db_index=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    # The WAP_HOST that runs a local slot's process; only it checks or stops that pid (pooling.hosts).
    host = models.CharField(max_length=255, blank=True, db_index=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    provision_attempts = models.PositiveIntegerField(default=0)
    last_health_at = models.DateTimeField(null=True, blank=True)
    last_health_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    state_changed_at = models.DateTimeField(auto_now_add=True)
    empty_since = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["tier", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(used__lte=models.F("capacity")), name="slot_never_overbooked"),
        ]
        indexes = [models.Index(fields=["tier", "state", "used"])]

    def __str__(self) -> str:
        return self.name or f"slot-{self.pk}"

    def default_name(self) -> str:
        """The name a slot gets when nobody gave it one: its tier and its id, e.g. `standard-12`."""
        return f"{self.tier.name}-{self.pk}"

    @property
    def free(self) -> int:
        return max(0, self.capacity - self.used)


class Assignment(models.Model):
    """A tenant's session living on a slot, from `started_at` until `ended_at`."""

    class EndReason(models.TextChoices):
        STOPPED = "stopped"
        FAILOVER = "failover"
        REBALANCED = "rebalanced"
        DRAINED = "drained"
        TIER_CHANGED = "tier_changed"
        IDLE = "idle"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="assignments")
    slot = models.ForeignKey(Slot, on_delete=models.PROTECT, related_name="assignments")
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=16, choices=EndReason.choices, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant"], condition=Q(ended_at__isnull=True), name="one_live_assignment_per_tenant"
            ),
        ]
        indexes = [models.Index(fields=["slot", "ended_at"])]

    def __str__(self) -> str:
        return f"{self.tenant} on {self.slot}"


class WhatsAppSession(models.Model):
    """A tenant's WhatsApp login. Status names are WAHA's."""

    class Status(models.TextChoices):
        STOPPED = "STOPPED"
        STARTING = "STARTING"
        SCAN_QR_CODE = "SCAN_QR_CODE"
        WORKING = "WORKING"
        FAILED = "FAILED"

    class Placement(models.TextChoices):
        UNPLACED = "unplaced"
        PLACED = "placed"
        WAITING = "waiting"  # the tier's pool is full; placed when room frees up

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="whatsapp_session")
    name = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.STOPPED)
    placement = models.CharField(max_length=16, choices=Placement.choices, default=Placement.UNPLACED)
    wanted = models.BooleanField(default=False, help_text="The tenant asked for the session to run.")
    qr_value = models.TextField(blank=True)
    me = models.JSONField(null=True, blank=True)
    phone_number_id = models.CharField(max_length=64, blank=True, help_text="Cloud API number, for cloud slots.")
    last_error = models.TextField(blank=True)
    start_attempts = models.PositiveIntegerField(default=0)
    status_changed_at = models.DateTimeField(auto_now_add=True)
    # The bridge's own time of the last webhook reading applied: its webhooks may arrive out of
    # order (each is a request of its own), and one older than this is stale (pooling.sessions).
    status_reported_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(auto_now_add=True)
    waiting_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "WhatsApp session"
        verbose_name_plural = "WhatsApp sessions"
        indexes = [
            models.Index(fields=["status", "last_activity_at"]),
            models.Index(fields=["placement"]),
            models.Index(fields=["phone_number_id"], name="session_phone_number_id"),
        ]
        constraints = [
            # One number, one live session: the second line behind number assignment
            # (CloudNumber), so two tenants can never send as, or receive for, one number.
            models.UniqueConstraint(
                fields=["phone_number_id"], condition=Q(wanted=True) & ~Q(phone_number_id=""),
                name="one_live_session_per_cloud_number",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"


class CloudNumber(models.Model):
    """A Cloud API number (Meta's phone_number_id) and the one tenant it belongs to.

    A tenant may start a session only on a number it holds. Staff assign numbers
    of the operator's Meta app (sends use the slot's token); a tenant claims its
    own by proving its access token reads the number on Graph (sends then use
    that token, never the slot's).
    """

    class Source(models.TextChoices):
        STAFF = "staff"
        TOKEN = "token"

    phone_number_id = models.CharField(max_length=64, unique=True)
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="cloud_numbers")
    source = models.CharField(max_length=8, choices=Source.choices)
    access_token = EncryptedTextField(blank=True, help_text="The tenant's own Meta token; empty = the slot's.")
    display_phone_number = models.CharField(max_length=32, blank=True)
    assigned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["phone_number_id"]

    def __str__(self) -> str:
        return f"{self.phone_number_id} → {self.tenant}"


class SessionEvent(models.Model):
    """History of a session: status changes and placements, for the admin."""

    session = models.ForeignKey(WhatsAppSession, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16)
    slot = models.ForeignKey(Slot, null=True, blank=True, on_delete=models.SET_NULL)
    note = models.CharField(max_length=255, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]


class PoolSnapshot(models.Model):
    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="snapshots")
    taken_at = models.DateTimeField(db_index=True)
    slots_by_state = models.JSONField(default=dict)
    capacity = models.PositiveIntegerField()
    used = models.PositiveIntegerField()
    waiting = models.PositiveIntegerField()

    class Meta:
        ordering = ["-taken_at"]

    @property
    def utilisation(self) -> float:
        return round(100 * self.used / self.capacity, 1) if self.capacity else 0.0
