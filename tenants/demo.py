"""The demo data: an operator and one tenant per tier. Idempotent."""

import secrets
from dataclasses import dataclass, field
from typing import Callable

from django.conf import settings

from tenants.default_tiers import ensure_default_tiers
from tenants.models import Membership, Tenant, Tier
from tenants.services import add_member, create_tenant, ensure_user

DEMO_OPERATOR = "operator"
DEMO_TENANTS = [
    ("Acme Shop", "acme", "standard"),
    ("Globex Clinic", "globex", "professional"),
    ("Initech Bank", "initech", "enterprise"),
]


@dataclass
class DemoResult:
    operator_username: str
    operator_password: str
    new_keys: dict[str, str] = field(default_factory=dict)
    existing: list[str] = field(default_factory=list)


DemoSeeder = Callable[..., None]
_seeders: dict[str, DemoSeeder] = {}


def register_demo_seeder(name: str, seeder: DemoSeeder) -> None:
    """Apps above tenants add their part of the demo from AppConfig.ready(); called in app order
    with `tenants=` the demo tenants, and must be idempotent (seed_demo runs at every start)."""
    _seeders[name] = seeder


def demo_password() -> str:
    # Generated once per checkout, like the secret key: a demo must not ship a known password.
    path = settings.VAR_DIR / "demo_operator_password"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return path.read_text().strip()


def seed_demo() -> DemoResult:
    ensure_default_tiers(Tier)
    password = demo_password()
    ensure_user(username=DEMO_OPERATOR, password=password, is_staff=True)
    result = DemoResult(operator_username=DEMO_OPERATOR, operator_password=password)
    for name, slug, tier_name in DEMO_TENANTS:
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            tenant, issued = create_tenant(name=name, slug=slug, tier=Tier.objects.get(name=tier_name))
            result.new_keys[slug] = issued.plaintext
        else:
            result.existing.append(slug)
        agent = ensure_user(username=f"{slug}-agent", password=password)
        add_member(tenant=tenant, user=agent, role=Membership.Role.OWNER)
    demo_tenants = list(Tenant.objects.filter(slug__in=[slug for _, slug, _ in DEMO_TENANTS]))
    # Apps above tenants (pooling, agents) add their part of the demo here.
    for seeder in _seeders.values():
        seeder(tenants=demo_tenants)
    return result
