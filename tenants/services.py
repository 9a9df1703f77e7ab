"""Writes for tiers, tenants, members and API keys."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from tenants.models import ApiKey, Membership, Tenant, Tier

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
    """The live key matching `plaintext`, with its tenant and tier loaded; None otherwise."""
    if not plaintext.startswith(API_KEY_PREFIX):
        return None
    api_key = (
        ApiKey.objects.select_related("tenant__tier")
        .filter(key_hash=hash_api_key(plaintext), revoked_at__isnull=True)
        .first()
    )
    if api_key is None:
        return None
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


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


def set_tenant_status(*, tenant: Tenant, status: str) -> Tenant:
    tenant.status = status
    tenant.full_clean()
    tenant.save(update_fields=["status"])
    return tenant


def ensure_user(*, username: str, password: str, is_staff: bool = False, email: str = ""):
    User = get_user_model()
    user, created = User.objects.get_or_create(username=username, defaults={"email": email})
    if created or not user.check_password(password) or user.is_staff != is_staff:
        user.set_password(password)
        user.is_staff = is_staff
        user.is_superuser = is_staff
        user.save()
    return user


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
