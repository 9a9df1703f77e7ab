from django.conf import settings
from django.db import models


class Tier(models.Model):
    """A service level: how tenants are packed onto bridge workers and what they pay."""

    STANDARD = "standard"
    PROFESSIONAL = "professional"
    ENTERPRISE = "enterprise"

    name = models.SlugField(max_length=32, unique=True)
    display_name = models.CharField(max_length=64)
    tenants_per_slot = models.PositiveIntegerField(help_text="Sessions one bridge worker hosts for this tier.")
    max_slots = models.PositiveIntegerField(
        null=True, blank=True, help_text="Most bridge workers this tier's pool may have; empty = bounded by host."
    )
    send_queue = models.CharField(max_length=32, help_text="rq queue that carries this tier's sends.")
    idle_slot_timeout_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="An empty slot is retired after this long; empty = when its tenant leaves."
    )
    monthly_price = models.DecimalField(max_digits=10, decimal_places=2, default=0)
    slot_cost_per_hour = models.DecimalField(max_digits=10, decimal_places=4, default=0)
    api_rate_limit_per_minute = models.PositiveIntegerField(default=60)
    messages_per_second = models.FloatField(
        default=1.0, help_text="Pacing of a bridge (WhatsApp Web) session's sends, before jitter."
    )

    class Meta:
        ordering = ["tenants_per_slot"]
        constraints = [models.CheckConstraint(condition=models.Q(tenants_per_slot__gte=1), name="tier_slot_holds_one")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def is_dedicated(self) -> bool:
        return self.tenants_per_slot == 1


class Tenant(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"

    name = models.CharField(max_length=128)
    slug = models.SlugField(max_length=64, unique=True)
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="tenants")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    time_zone = models.CharField(max_length=64, default="UTC")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["tier", "status"])]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        AGENT = "agent"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.AGENT)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="one_membership_per_user_tenant")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant} ({self.role})"


class ApiKey(models.Model):
    """An integration's credential. Only a hash is stored; the key is shown once."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=64, default="default")
    prefix = models.CharField(max_length=16, unique=True, help_text="Visible part, to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        verbose_name_plural = "API keys"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.tenant})"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None
