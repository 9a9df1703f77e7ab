"""Writes for tiers, tenants, members and API keys."""

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from tenants import key_cache
from tenants.models import ApiKey, Membership, Tenant, Tier

logger = logging.getLogger(__name__)

API_KEY_PREFIX = "wap_"
# Touching last_used_at on every request would make each API call a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedApiKey:
    api_key: ApiKey
    plaintext: str


def hash_api_key(plaintext: str) -> str:
    # Keys carry 240 random bits, so a fast hash is safe and lookups stay an index hit.
    return hashlib.sha256(plaintext.encode()).hexdigest()


def issue_api_key(*, tenant: Tenant, name: str = "default") -> IssuedApiKey:
    prefix = secrets.token_hex(4)
    plaintext = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(30)}"
    api_key = ApiKey.objects.create(tenant=tenant, name=name, prefix=prefix, key_hash=hash_api_key(plaintext))
    return IssuedApiKey(api_key=api_key, plaintext=plaintext)


def revoke_api_key(*, api_key: ApiKey) -> None:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])


def authenticate_api_key(plaintext: str) -> ApiKey | None:
    """The live key matching `plaintext`, with its tenant and tier loaded; None otherwise.

    Kept per process (tenants.key_cache); a revocation reaches every process at once.
    """
    if not plaintext.startswith(API_KEY_PREFIX):
        return None
    key_hash = hash_api_key(plaintext)
    api_key = key_cache.lookup(key_hash, lambda: _live_api_key(key_hash))
    if api_key is None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
        key_cache.touched(key_hash, now)
    return api_key


def _live_api_key(key_hash: str) -> ApiKey | None:
    return ApiKey.objects.select_related("tenant__tier").filter(key_hash=key_hash, revoked_at__isnull=True).first()


def unique_slug(name: str) -> str:
    base = slugify(name)[:56] or "tenant"
    slug, n = base, 1
    while Tenant.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def create_tenant(*, name: str, tier: Tier, slug: str = "", time_zone: str = "UTC") -> tuple[Tenant, IssuedApiKey]:
    tenant = Tenant(name=name, slug=slug or unique_slug(name), tier=tier, time_zone=time_zone)
    tenant.full_clean()
    tenant.save()
    return tenant, issue_api_key(tenant=tenant)


def add_member(*, tenant: Tenant, user, role: str = Membership.Role.AGENT) -> Membership:
    membership, _ = Membership.objects.update_or_create(user=user, tenant=tenant, defaults={"role": role})
    return membership


# --- suspension (docs/security.md, "Suspension") ---------------------------------------
#
# Suspension is a rule of the services, not of the views: the apps that do work
# for a tenant (sends, webhooks, agents) check Tenant.status where they claim
# that work, and leave it due. Reactivation hands the tenant back to them through
# hooks they register from AppConfig.ready() (tenants cannot import them).

ReactivationHook = Callable[[int], None]
_reactivation_hooks: dict[str, ReactivationHook] = {}


def register_reactivation_hook(name: str, hook: ReactivationHook) -> None:
    """`hook(tenant_id)` runs after a reactivation commits: resume what waited (idempotent by name)."""
    _reactivation_hooks[name] = hook


def _run_reactivation_hooks(tenant_id: int) -> None:
    for name, hook in list(_reactivation_hooks.items()):
        try:
            hook(tenant_id)
        except Exception:
            # The sweepers find the waiting work anyway once the tenant is active.
            logger.exception("reactivation hook %s failed for tenant %s; its sweeper will catch up", name, tenant_id)


@transaction.atomic
def suspend_tenant(*, tenant: Tenant) -> Tenant:
    """Stop the tenant's work: API writes answer 403 `tenant_suspended`, queued sends and
    webhook deliveries wait (they stay due), agents stop answering. Reads still work."""
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if locked.status != Tenant.Status.SUSPENDED:
        locked.status = Tenant.Status.SUSPENDED
        locked.save(update_fields=["status"])
        logger.warning("tenant %s suspended", locked.slug)
    tenant.status = locked.status
    return locked


@transaction.atomic
def reactivate_tenant(*, tenant: Tenant) -> Tenant:
    """Lift a suspension; after commit, what waited (sends, webhooks) is enqueued again."""
    locked = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if locked.status != Tenant.Status.ACTIVE:
        locked.status = Tenant.Status.ACTIVE
        locked.save(update_fields=["status"])
        logger.warning("tenant %s reactivated", locked.slug)
        transaction.on_commit(lambda: _run_reactivation_hooks(locked.pk))
    tenant.status = locked.status
    return locked


def set_tenant_status(*, tenant: Tenant, status: str) -> Tenant:
    if status == Tenant.Status.SUSPENDED:
        return suspend_tenant(tenant=tenant)
    if status == Tenant.Status.ACTIVE:
        return reactivate_tenant(tenant=tenant)
    raise ValueError(f"unknown tenant status {status!r}; use {Tenant.Status.ACTIVE!r} or {Tenant.Status.SUSPENDED!r}")


def create_user_once(*, username: str, password: str, is_staff: bool = False, email: str = ""):
    """The user, created with `password` if missing. An existing user is returned untouched:
    a password someone changed is never reset (returns (user, created))."""
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"email": email})
    if created:
        user.set_password(password)
        user.is_staff = user.is_superuser = is_staff
        user.save()
    return user, created


@dataclass(frozen=True)
class Onboarded:
    """A new tenant ready to use: the key and password are here once, never stored in clear."""

    tenant: Tenant
    api_key: IssuedApiKey
    user: object
    membership: Membership
    password: str  # "" when the inbox user existed already (its password is left alone)

    def next_steps(self, base_url: str) -> list[str]:
        return [
            f"Give the API key to the tenant's developer: it is shown only now. Docs: {base_url}/api/docs/",
            f"The developer starts the WhatsApp session: POST {base_url}/api/v1/session/start, "
            f"then scans GET {base_url}/api/v1/session/qr.png with the phone.",
            f"{self.user.get_username()} signs in to the inbox at {base_url}/inbox/"
            + (" with the password shown here." if self.password else " with their existing password."),
        ]


@transaction.atomic(durable=True)
def onboard_tenant(
    *, name: str, tier: Tier, inbox_username: str, inbox_email: str = "", slug: str = "", time_zone: str = "UTC",
    inbox_password: str = "",
) -> Onboarded:
    """A tenant, its first API key and an inbox user who owns it, in one step (staff API, command, admin).

    An existing user keeps their password and gains the membership; a new one gets
    `inbox_password`, or a generated one returned once.
    """
    tenant, issued = create_tenant(name=name, tier=tier, slug=slug, time_zone=time_zone)
    User = get_user_model()
    user = User.objects.filter(username=inbox_username).first()
    password = ""
    if user is None:
        password = inbox_password or secrets.token_urlsafe(12)
        user = User(username=inbox_username, email=inbox_email)
        user.set_password(password)
        user.full_clean(exclude=["password"])
        user.save()
    membership = add_member(tenant=tenant, user=user, role=Membership.Role.OWNER)
    return Onboarded(tenant=tenant, api_key=issued, user=user, membership=membership, password=password)
