"""Tenant URLs that messaging calls, under the production egress policy (waplatform/egress.py):
media links refused when accepted, webhook hosts checked again at every delivery."""

import json
from urllib.parse import urlsplit

import pytest

from messaging import webhooks_out
from messaging.models import Message, WebhookDelivery
from tests import egress_names
from tests.factories import TenantFactory
from tests.messaging.conftest import work_until
from waplatform.events import publish_event


@pytest.fixture(autouse=True)
def _production_policy(settings):
    settings.EGRESS_ALLOW_PRIVATE_URLS = False
    settings.EGRESS_RESOLVER = egress_names.RESOLVER
    yield
    egress_names.reset()


@pytest.mark.parametrize("kind", ["image", "video", "audio", "document"])
@pytest.mark.parametrize("field", ["link", "url"])
def test_a_media_link_to_a_private_address_is_refused_naming_the_field_and_the_setting(api, kind, field):
    response = api.post("/api/v1/messages", {"to": "16505551234", "type": kind,
                                             kind: {field: "http://127.0.0.1:6379/x.png"}}, format="json")

    assert response.status_code == 400
    errors = response.json()
    message = json.dumps(errors)
    assert f'"{kind}"' in message and f'"{field}"' in message
    assert "resolves" not in message and "127.0.0.1 is a loopback address" in message
    assert "EGRESS_ALLOW_PRIVATE_URLS" in message
    assert not Message.objects.exists()


def test_a_media_link_to_a_public_host_is_accepted(api):
    egress_names.answer("cdn.shop.test", ["93.184.216.34"])
    response = api.post("/api/v1/messages", {"to": "16505551234", "type": "image",
                                             "image": {"link": "https://cdn.shop.test/a.png"}}, format="json")
    assert response.status_code == 202


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_webhook_host_that_resolves_private_at_delivery_is_refused_and_nothing_reaches_it(webhook_receiver):
    # given a tenant's webhook host that answered a public address when the endpoint was saved...
    port = urlsplit(webhook_receiver.url).port
    egress_names.answer("hooks.tenant.test", ["93.184.216.34"], ["127.0.0.1"])
    tenant = TenantFactory()
    endpoint = webhooks_out.create_endpoint(tenant=tenant, url=f"http://hooks.tenant.test:{port}/hook")

    # ...and answers 127.0.0.1 (where the receiver listens) by the time a delivery goes out
    publish_event(tenant_id=tenant.pk, type="message.received", data={"conversation_id": 1})
    delivery = work_until(lambda: WebhookDelivery.objects.filter(endpoint=endpoint).exclude(
        status="pending").first(), "webhooks")

    assert delivery.status in ("failed", "dead") and delivery.last_status_code is None
    assert "'hooks.tenant.test' resolves to 127.0.0.1, a loopback address" in delivery.last_error
    assert "EGRESS_ALLOW_PRIVATE_URLS" in delivery.last_error
    assert webhook_receiver.requests == []


def test_a_webhook_url_is_refused_at_creation_with_the_reason(api):
    egress_names.answer("metadata.tenant.test", ["169.254.169.254"])
    response = api.post("/api/v1/webhooks", {"url": "http://metadata.tenant.test/latest"}, format="json")
    assert response.status_code == 400
    assert "resolves to 169.254.169.254, a cloud metadata address" in json.dumps(response.json())
