import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from tenants.default_tiers import ensure_default_tiers
from tenants.models import Membership, Tenant, Tier


def tier(name: str) -> Tier:
    # Tiers come from a data migration; transactional tests flush them, so restore the real rows.
    if not Tier.objects.filter(name=name).exists():
        ensure_default_tiers(Tier)
    return Tier.objects.get(name=name)


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    tier = factory.LazyFunction(lambda: tier("standard"))


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests")


class OperatorFactory(UserFactory):
    """Platform staff: signs in to the admin and its operations pages."""

    is_staff = True
    is_superuser = True


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    tenant = factory.SubFactory(TenantFactory)
    role = Membership.Role.OWNER


class SlotFactory(factory.django.DjangoModelFactory):
    """A registered (static) slot; tests that need a live worker point base_url at a sandbox process."""

    class Meta:
        model = "pooling.Slot"
        skip_postgeneration_save = True  # `tenants` writes `used` itself

    name = factory.Sequence(lambda n: f"slot-{n}")
    tier = factory.LazyFunction(lambda: tier("standard"))
    dialect = "sandbox"
    provisioner = "static"
    base_url = "http://127.0.0.1:9"
    api_key = "sandbox-test-key"
    capacity = factory.LazyAttribute(lambda o: o.tier.tenants_per_slot)
    state = "ready"

    @factory.post_generation
    def tenants(slot, create, count, **kwargs):  # noqa: N805 (factory_boy passes the object)
        """`SlotFactory(tenants=n)`: n tenants with live assignments on the slot, and `used` counting them."""
        if not create or not count:
            return
        AssignmentFactory.create_batch(count, slot=slot, **kwargs)
        type(slot).objects.filter(pk=slot.pk).update(used=count)
        slot.refresh_from_db()


class AssignmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "pooling.Assignment"

    tenant = factory.SubFactory(TenantFactory)
    slot = factory.SubFactory(SlotFactory)
    started_at = factory.LazyFunction(timezone.now)
