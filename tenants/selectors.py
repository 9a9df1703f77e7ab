from django.db.models import QuerySet

from tenants.models import Tenant, Tier


def get_tier(name: str) -> Tier:
    return Tier.objects.get(name=name)


def tenants_of_user(user) -> QuerySet[Tenant]:
    if user.is_staff:
        return Tenant.objects.all()
    return Tenant.objects.filter(memberships__user=user)
