"""The messaging admin: changelists stay a fixed number of queries, endpoint writes go through services."""

import pytest

from messaging.models import Contact, Conversation, Message, PendingStatus, WebhookDelivery, WebhookEndpoint
from tests.factories import (
    ContactFactory,
    ConversationFactory,
    MessageFactory,
    PendingStatusFactory,
    TenantFactory,
    UserFactory,
    WebhookDeliveryFactory,
    WebhookEndpointFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def _contacts(count: int) -> list[Contact]:
    tenants = TenantFactory.create_batch(3)
    return Contact.objects.bulk_create(ContactFactory.build(tenant=tenants[i % 3]) for i in range(count))


def _conversations(count: int) -> list[Conversation]:
    return Conversation.objects.bulk_create(
        ConversationFactory.build(contact=contact, tenant_id=contact.tenant_id) for contact in _contacts(count))


def _messages(count: int) -> None:
    Message.objects.bulk_create(
        MessageFactory.build(conversation=c, contact_id=c.contact_id, tenant_id=c.tenant_id)
        for c in _conversations(count))


def _pending_statuses(count: int) -> None:
    tenants = TenantFactory.create_batch(3)
    PendingStatus.objects.bulk_create(PendingStatusFactory.build(tenant=tenants[i % 3]) for i in range(count))


def _endpoints(count: int) -> list[WebhookEndpoint]:
    tenants = TenantFactory.create_batch(3)
    return WebhookEndpoint.objects.bulk_create(
        WebhookEndpointFactory.build(tenant=tenants[i % 3]) for i in range(count))


def _deliveries(count: int) -> None:
    endpoints = _endpoints(3)
    WebhookDelivery.objects.bulk_create(WebhookDeliveryFactory.build(endpoint=endpoints[i % 3]) for i in range(count))


ROWS = {
    "contact": _contacts,
    "conversation": _conversations,
    "message": _messages,
    "pendingstatus": _pending_statuses,
    "webhookendpoint": _endpoints,
    "webhookdelivery": _deliveries,
}


@pytest.mark.parametrize("count", [10, 1000])
@pytest.mark.parametrize("model", list(ROWS))
def test_a_changelist_is_a_fixed_number_of_queries(staff_client, django_assert_max_num_queries, model, count):
    # given that many rows, spread over several tenants
    ROWS[model](count)

    # when staff open the changelist
    with django_assert_max_num_queries(10):
        response = staff_client.get(f"/admin/messaging/{model}/")

    # then it lists them all in at most 10 queries
    assert response.status_code == 200
    assert response.context["cl"].result_count == count


def test_the_admin_refuses_a_webhook_url_on_a_private_network(staff_client, settings):
    # given production's egress rule
    settings.EGRESS_ALLOW_PRIVATE_URLS = False
    tenant = TenantFactory()

    # when staff add an endpoint pointing at loopback
    response = staff_client.post("/admin/messaging/webhookendpoint/add/", {
        "tenant": tenant.pk, "url": "http://127.0.0.1:8000/internal", "event_types": '["*"]', "active": "on",
        "description": ""})

    # then the form says why, and nothing is written
    assert response.status_code == 200
    assert "loopback address; set EGRESS_ALLOW_PRIVATE_URLS" in str(response.context["adminform"].form.errors["url"])
    assert not WebhookEndpoint.objects.exists()


def test_the_admin_creates_an_endpoint_through_the_service(staff_client, settings):
    # given a tenant
    settings.EGRESS_ALLOW_PRIVATE_URLS = True
    tenant = TenantFactory()

    # when staff add an endpoint, one event type blank
    response = staff_client.post("/admin/messaging/webhookendpoint/add/", {
        "tenant": tenant.pk, "url": "http://127.0.0.1:8000/hook", "event_types": '["message.received", " "]', "active": "on",
        "description": "orders"})

    # then it is saved as the service saves it: blank types dropped, a fresh signing secret
    assert response.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.tenant, endpoint.url, endpoint.event_types, endpoint.description) == \
        (tenant, "http://127.0.0.1:8000/hook", ["message.received"], "orders")
    assert len(endpoint.secret) >= 16


def test_the_admin_refuses_changing_an_endpoint_to_a_private_url(staff_client, settings):
    # given an endpoint on a public host
    settings.EGRESS_ALLOW_PRIVATE_URLS = False
    endpoint = WebhookEndpointFactory(url="https://93.184.215.14/hook")

    # when staff point it at the cloud metadata address
    response = staff_client.post(f"/admin/messaging/webhookendpoint/{endpoint.pk}/change/", {
        "tenant": endpoint.tenant_id, "url": "http://169.254.169.254/latest", "event_types": '["*"]',
        "active": "on", "description": ""})

    # then it keeps its URL
    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert endpoint.url == "https://93.184.215.14/hook"
