import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from messaging.models import Message
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


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "messaging.Contact"

    tenant = factory.SubFactory(TenantFactory)
    wa_id = factory.Sequence(lambda n: f"1650555{n:04d}")
    name = factory.Sequence(lambda n: f"Contact {n}")


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "messaging.Conversation"

    contact = factory.SubFactory(ContactFactory)
    tenant = factory.SelfAttribute("contact.tenant")


class MessageFactory(factory.django.DjangoModelFactory):
    """An inbound text as the intake stores it; pass direction/status for other cases."""

    class Meta:
        model = "messaging.Message"

    conversation = factory.SubFactory(ConversationFactory)
    contact = factory.SelfAttribute("conversation.contact")
    tenant = factory.SelfAttribute("conversation.tenant")
    direction = "in"
    type = "text"
    text = factory.Sequence(lambda n: f"message {n}")
    status = "received"
    status_rank = factory.LazyAttribute(lambda o: Message.RANK[o.status])
    provider_message_id = factory.Sequence(lambda n: f"wamid.factory-{n}")


class PendingStatusFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "messaging.PendingStatus"

    tenant = factory.SubFactory(TenantFactory)
    provider_message_id = factory.Sequence(lambda n: f"wamid.pending-{n}")
    status = "delivered"


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "messaging.WebhookEndpoint"

    tenant = factory.SubFactory(TenantFactory)
    url = factory.Sequence(lambda n: f"https://hooks.example.com/{n}")
    event_types = factory.LazyFunction(lambda: ["*"])


class WebhookDeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "messaging.WebhookDelivery"

    endpoint = factory.SubFactory(WebhookEndpointFactory)
    event_id = factory.Sequence(lambda n: f"evt-{n}")
    event_type = "message.received"
    payload = factory.LazyFunction(dict)
