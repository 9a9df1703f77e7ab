"""Suspension is a rule of the services (docs/security.md, "Suspension").

A suspended tenant's queued sends and webhook deliveries wait (they stay
due; real rq workers and the sweep pass over them), and reactivation sends
them. Suspension here goes through manage.py, reactivation through the staff
API and the admin action: every entry point calls the same services.
"""

import pytest
from django.core.management import call_command

from messaging import services
from messaging.models import Message, WebhookDelivery
from tenants.models import Tenant
from tests.messaging.conftest import work, work_until

pytestmark = pytest.mark.integration


def test_a_suspended_tenants_sends_wait_and_go_after_reactivation(platform, staff_client, settings):
    # given a send accepted (its job is in the queue) just before the tenant is suspended
    settings.SWEEP_STUCK_AFTER_SECONDS = 0
    accepted = platform.api.post("/api/v1/messages", {"to": "16505551234", "text": {"body": "later"}}, format="json")
    call_command("suspend_tenant", platform.tenant.slug)

    # when every worker runs and the sweep passes, twice
    for _ in range(2):
        work()
        services.sweep()
    message = Message.objects.get(pk=accepted.json()["id"])

    # then the message waits, queued and not failed, and the API says why writes are refused
    assert (message.status, message.error_code, message.attempts) == ("queued", "", 0)
    refused = platform.api.post("/api/v1/messages", {"to": "16505551234", "text": {"body": "now"}}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "tenant_suspended"
    assert "reactivate" in refused.json()["detail"]
    assert platform.api.get(f"/api/v1/messages/{message.pk}").status_code == 200  # reads still work
    with pytest.raises(services.TenantSuspended):
        services.send_message(tenant=Tenant.objects.get(pk=platform.tenant.pk), to="16505551234", type="text",
                              text="past the API")

    # when staff reactivate the tenant, it is sent without anyone asking again
    answer = staff_client.post(f"/api/v1/staff/tenants/{platform.tenant.slug}/reactivate")
    assert answer.status_code == 200 and answer.json()["status"] == "active"
    sent = work_until(lambda: (m := Message.objects.get(pk=message.pk)).status in ("sent", "delivered", "read") and m)
    assert sent.provider_message_id


def test_a_suspended_tenants_webhooks_pause_and_deliver_after_reactivation(platform, webhook_receiver, staff_client):
    # given a tenant webhook, then the tenant suspended
    created = platform.api.post("/api/v1/webhooks", {"url": webhook_receiver.url, "event_types": ["message.received"]},
                                format="json")
    assert created.status_code == 201
    call_command("suspend_tenant", platform.tenant.slug)

    # when a customer writes: the message is stored (nothing is lost), its delivery is due
    platform.sandbox.control("POST", "/sandbox/inbound",
                             json={"session": platform.session.name, "from": "16505551234", "text": "anyone?"})
    inbound = work_until(lambda: Message.objects.filter(tenant=platform.tenant, direction="in").first())
    for _ in range(2):
        work("webhooks")
        services.sweep()

    # then nothing reached the tenant's endpoint while suspended
    assert webhook_receiver.requests == []
    assert WebhookDelivery.objects.get().status == "pending"

    # when reactivated from the admin, the delivery goes out
    changelist = "/admin/tenants/tenant/"
    answer = staff_client.post(changelist, {"action": "reactivate", "_selected_action": [platform.tenant.pk]})
    assert answer.status_code == 302
    work_until(lambda: WebhookDelivery.objects.filter(status="succeeded").exists(), "webhooks", "maintenance")
    delivered = webhook_receiver.wait_for(1)
    assert delivered[0].json()["data"]["id"] == inbound.pk


def test_suspension_and_reactivation_from_the_staff_api_only(db, api_client, tenant, staff_client):
    suspended = staff_client.post(f"/api/v1/staff/tenants/{tenant.slug}/suspend")
    as_tenant = api_client.post(f"/api/v1/staff/tenants/{tenant.slug}/reactivate")

    assert suspended.status_code == 200 and suspended.json()["status"] == "suspended"
    assert as_tenant.status_code in (401, 403)
    assert Tenant.objects.get(pk=tenant.pk).status == "suspended"
