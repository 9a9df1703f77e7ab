"""Cloud numbers belong to tenants by assignment (docs/security.md, "Tenants and numbers").

Meta is the sandbox bridge's Cloud dialect, a real process spoken to over
HTTP: its `GET /{phone_number_id}` answers only the number's own token.
"""

import json
import time

import httpx
import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction

from messaging.models import Contact, Message
from pooling import services as pooling
from pooling.bridges.signatures import cloud_signature
from pooling.models import CloudNumber, WhatsAppSession
from tests.conftest import client_for
from tests.factories import TenantFactory
from tests.messaging.conftest import work_until
from waplatform import counters

pytestmark = pytest.mark.integration

APP_SECRET = "cloud-app-secret"  # tests/messaging/conftest.py sets CLOUD_API_APP_SECRET to it
TENANT_TOKEN = "EAAG-the-tenants-own-token"


def start(api, phone_number_id: str):
    return api.post("/api/v1/session/start", {"phone_number_id": phone_number_id}, format="json")


def test_staff_assign_a_number_and_only_its_tenant_can_start_on_it(db, staff_client):
    # given A holds 1000001 (manage.py) and B holds 1000002 (the staff API)
    a, b = TenantFactory(), TenantFactory()
    call_command("assign_number", "1000001", a.slug)
    assigned = staff_client.post("/api/v1/staff/numbers", {"phone_number_id": "1000002", "tenant": b.slug},
                                 content_type="application/json")

    # when each tenant starts a session on A's number
    a_start, b_start = start(client_for(a), "1000001"), start(client_for(b), "1000001")

    # then A's is accepted, B is told the number is not its own and how to get one assigned
    assert assigned.status_code == 201 and assigned.json()["tenant"] == b.slug
    assert a_start.status_code == 202
    assert b_start.status_code == 403 and b_start.json()["code"] == "number_not_assigned"
    assert "POST /api/v1/numbers/claim" in b_start.json()["detail"]
    assert not WhatsAppSession.objects.filter(tenant=b, phone_number_id="1000001").exists()
    assert [n["phone_number_id"] for n in client_for(b).get("/api/v1/numbers").json()] == ["1000002"]


def test_a_number_held_by_a_tenant_cannot_be_assigned_to_another_nor_released_while_in_use(db, staff_client):
    a, b = TenantFactory(), TenantFactory()
    pooling.assign_number(phone_number_id="1000001", tenant=a)
    start(client_for(a), "1000001")

    to_b = staff_client.post("/api/v1/staff/numbers", {"phone_number_id": "1000001", "tenant": b.slug},
                             content_type="application/json")
    released_in_use = staff_client.delete("/api/v1/staff/numbers/1000001")
    client_for(a).post("/api/v1/session/stop")
    released = staff_client.delete("/api/v1/staff/numbers/1000001")

    assert to_b.status_code == 409 and to_b.json()["code"] == "number_taken"
    assert released_in_use.status_code == 409 and "stop it first" in released_in_use.json()["detail"]
    assert released.status_code == 204 and not CloudNumber.objects.exists()
    # and without the number A cannot start on it again, but can start without it
    assert start(client_for(a), "1000001").json()["code"] == "number_not_assigned"
    assert client_for(a).post("/api/v1/session/start").status_code == 202


def test_a_tenants_key_cannot_use_the_staff_number_api(db, api_client, tenant):
    answer = api_client.post("/api/v1/staff/numbers", {"phone_number_id": "1000001", "tenant": tenant.slug},
                             format="json")

    assert answer.status_code in (401, 403) and not CloudNumber.objects.exists()


def test_two_live_sessions_on_one_number_are_refused_by_the_database(db):
    # given A's live session on its number, and B's session
    a, b = TenantFactory(), TenantFactory()
    pooling.assign_number(phone_number_id="1000001", tenant=a)
    pooling.start_session(tenant=a, phone_number_id="1000001")
    pooling.start_session(tenant=b)

    # when anything writes A's number onto B's live session, past the services
    with pytest.raises(IntegrityError), transaction.atomic():
        WhatsAppSession.objects.filter(tenant=b).update(phone_number_id="1000001")

    # then the database refused it; a stopped session may keep the number it had
    pooling.stop_session(tenant=b)
    WhatsAppSession.objects.filter(tenant=b).update(phone_number_id="1000001")
    assert WhatsAppSession.objects.filter(phone_number_id="1000001").count() == 2


def _register_on_meta(sandbox, phone_number_id: str, token: str) -> None:
    """What Meta's dashboard does for the number's owner: the sandbox knows the number and its token."""
    answer = httpx.post(f"{sandbox.base_url}/sandbox/cloud/numbers", timeout=5, json={
        "phone_number_id": phone_number_id, "access_token": token, "app_secret": APP_SECRET, "webhook_url": ""})
    assert answer.status_code == 201, answer.text


def test_a_tenant_claims_its_number_with_its_own_token_and_sends_with_it(
        transactional_db, hook_relay, spawn_sandbox, settings):
    # given a number whose owner holds TENANT_TOKEN at "Meta" (the sandbox's Graph dialect)
    sandbox = spawn_sandbox(capacity=3, ack_delay=0.05)
    settings.CLOUD_API_BASE_URL = f"{sandbox.base_url}/v21.0"
    _register_on_meta(sandbox, "2000001", TENANT_TOKEN)
    tenant = TenantFactory()
    api = client_for(tenant)
    pooling.register_static_slot(dialect="sandbox", base_url=sandbox.base_url, api_key=sandbox.api_key,
                                 tier=tenant.tier, capacity=3)

    # when the tenant claims it with a wrong token, then with its own
    wrong = api.post("/api/v1/numbers/claim", {"phone_number_id": "2000001", "access_token": "EAAG-guessed"},
                     format="json")
    unassigned_start = start(api, "2000001")
    right = api.post("/api/v1/numbers/claim", {"phone_number_id": "2000001", "access_token": TENANT_TOKEN},
                     format="json")

    # then the wrong token is refused and the number stays nobody's; the right one assigns it
    assert wrong.status_code == 403 and wrong.json()["code"] == "number_token_refused"
    assert unassigned_start.status_code == 403
    assert right.status_code == 201 and right.json()["own_token"] is True
    assert right.json()["display_phone_number"]
    assert TENANT_TOKEN not in right.content.decode()
    with connection.cursor() as cursor:
        cursor.execute("SELECT access_token FROM pooling_cloudnumber")
        (stored,) = cursor.fetchone()
    assert stored.startswith("enc:v1:") and TENANT_TOKEN not in stored

    # and the session and its sends use the tenant's token: the sandbox answers nobody else for this number
    assert start(api, "2000001").status_code == 202
    work_until(lambda: WhatsAppSession.objects.filter(tenant=tenant, status="WORKING").exists(), "maintenance")
    sent = api.post("/api/v1/messages", {"to": "16505551234", "text": {"body": "from my own number"}}, format="json")
    message = work_until(lambda: (m := Message.objects.get(pk=sent.json()["id"])).status in ("sent", "delivered",
                                                                                             "read") and m)
    assert message.provider_message_id.startswith("wamid.")


def test_a_claim_for_a_number_meta_does_not_show_the_token_is_refused(transactional_db, spawn_sandbox, settings):
    sandbox = spawn_sandbox(capacity=3)
    settings.CLOUD_API_BASE_URL = f"{sandbox.base_url}/v21.0"
    _register_on_meta(sandbox, "2000001", "someone-elses-token")
    api = client_for(TenantFactory())

    answer = api.post("/api/v1/numbers/claim", {"phone_number_id": "2000009", "access_token": TENANT_TOKEN},
                      format="json")

    assert answer.status_code == 403 and "does not show number 2000009" in answer.json()["detail"]
    assert not CloudNumber.objects.exists()


def _cloud_inbound(phone_number_id: str, message_id: str) -> bytes:
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "waba", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Ann"}, "wa_id": "16505551234"}],
            "messages": [{"from": "16505551234", "id": message_id, "timestamp": str(int(time.time())), "type": "text",
                          "text": {"body": "hello"}}],
        }}]}]}).encode()


def test_inbound_for_a_number_no_tenant_holds_is_stored_nowhere_and_counted(db, client):
    # given A holds 1000001 and runs a session on it
    a = TenantFactory()
    pooling.assign_number(phone_number_id="1000001", tenant=a)
    pooling.start_session(tenant=a, phone_number_id="1000001")

    # when correctly signed inbound arrives for a number nobody holds, then for A's
    def post(body: bytes):
        return client.post("/hooks/cloud/", data=body, content_type="application/json",
                           HTTP_X_HUB_SIGNATURE_256=cloud_signature(APP_SECRET, body))

    unknown = post(_cloud_inbound("9999999", "wamid.unknown-1"))
    stored_after_unknown = (Message.objects.count(), Contact.objects.count())
    known = post(_cloud_inbound("1000001", "wamid.known-1"))

    # then the unknown number's message is stored nowhere, and counted; A's lands with A
    assert unknown.status_code == 200 and unknown.json()["received"] == 0
    assert stored_after_unknown == (0, 0)
    assert ("bridge_events_unrouted", {"dialect": "cloud"}, 1) in counters.read_all()
    assert known.json()["received"] == 1 and Message.objects.get().tenant_id == a.pk


def test_staff_assign_a_number_in_the_admin_and_its_page_never_shows_a_token(db, staff_client):
    tenant = TenantFactory()

    added = staff_client.post("/admin/pooling/cloudnumber/add/", {"phone_number_id": "3000001", "tenant": tenant.pk})
    number = CloudNumber.objects.get(phone_number_id="3000001")
    CloudNumber.objects.filter(pk=number.pk).update(access_token="EAAG-stored-secret")
    page = staff_client.get(f"/admin/pooling/cloudnumber/{number.pk}/change/").content.decode()
    taken = staff_client.post("/admin/pooling/cloudnumber/add/", {"phone_number_id": "3000001",
                                                                 "tenant": TenantFactory().pk})

    assert added.status_code == 302 and (number.tenant_id, number.source) == (tenant.pk, "staff")
    assert "3000001" in page and "EAAG-stored-secret" not in page
    assert taken.status_code == 200 and CloudNumber.objects.get().tenant_id == tenant.pk  # the form refused it
