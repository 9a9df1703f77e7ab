"""The demo data: an operator and one tenant per tier, each demo user with a password of its own.

Seeded only into a new database (no user, no tenant yet) and never with DEMO=false, so
`seed_demo` at every start cannot reset a password someone changed. Passwords are
printed once and kept in var/demo-passwords/<username> (0600, untracked) for whoever
missed the console; docs/security.md, "Credentials".
"""

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from tenants.default_tiers import ensure_default_tiers
from tenants.models import Membership, Tenant, Tier
from tenants.services import add_member, create_tenant, create_user_once

DEMO_OPERATOR = "operator"
DEMO_TENANTS = [
    ("Acme Shop", "acme", "standard"),
    ("Globex Clinic", "globex", "professional"),
    ("Initech Bank", "initech", "enterprise"),
]


@dataclass
class DemoResult:
    seeded: bool
    reason: str = ""
    passwords: dict[str, str] = field(default_factory=dict)  # username -> password, new users only
    new_keys: dict[str, str] = field(default_factory=dict)


DemoSeeder = Callable[..., None]
_seeders: dict[str, DemoSeeder] = {}


def register_demo_seeder(name: str, seeder: DemoSeeder) -> None:
    """Apps above tenants add their part of the demo from AppConfig.ready(); called in app order
    with `tenants=` the demo tenants, once, when the demo is seeded into a new database."""
    _seeders[name] = seeder


def passwords_dir() -> Path:
    return settings.VAR_DIR / "demo-passwords"


def _keep_password(username: str, password: str) -> None:
    directory = passwords_dir()
    directory.mkdir(mode=0o700, exist_ok=True)
    path = directory / username
    path.unlink(missing_ok=True)  # a file of an earlier database: replaced, never appended to
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write(password + "\n")


def database_is_new() -> bool:
    return not get_user_model().objects.exists() and not Tenant.objects.exists()


def seed_demo() -> DemoResult:
    ensure_default_tiers(Tier)
    if not settings.DEMO:
        return DemoResult(seeded=False, reason="DEMO=false: no demo users or tenants.")
    if not database_is_new():
        return DemoResult(seeded=False, reason="The database already has users or tenants: "
                                               "the demo is seeded only into a new one.")
    result = DemoResult(seeded=True)
    with transaction.atomic():
        _create_user(result, DEMO_OPERATOR, is_staff=True)
        demo_tenants = []
        for name, slug, tier_name in DEMO_TENANTS:
            tenant, issued = create_tenant(name=name, slug=slug, tier=Tier.objects.get(name=tier_name))
            result.new_keys[slug] = issued.plaintext
            agent = _create_user(result, f"{slug}-agent")
            add_member(tenant=tenant, user=agent, role=Membership.Role.OWNER)
            demo_tenants.append(tenant)
    # Apps above tenants (pooling, agents) add their part of the demo here.
    for seeder in _seeders.values():
        seeder(tenants=demo_tenants)
    # Written last: a seed that failed half-way leaves no password for a user that was rolled back.
    for username, password in result.passwords.items():
        _keep_password(username, password)
    return result


def _create_user(result: DemoResult, username: str, *, is_staff: bool = False):
    password = secrets.token_urlsafe(12)
    user, created = create_user_once(username=username, password=password, is_staff=is_staff)
    if created:
        result.passwords[username] = password
    return user
