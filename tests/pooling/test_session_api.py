import base64

import httpx
import pytest
from django.test import override_settings

from pooling import services
from pooling.models import Assignment, Slot, WhatsAppSession
from tests.conftest import client_for
from tests.factories import TenantFactory
from tests.pooling.conftest import drain
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def test_the_session_api_walks_a_tenant_from_start_to_working_and_back_to_stopped(pool_env):
    tenant = TenantFactory()
    api = client_for(tenant)

    with override_settings(SANDBOX_AUTO_SCAN_SECONDS=0):
        started = api.post("/api/v1/session/start")
        assert started.status_code == 202
        assert started.json()["placement"] == "placed"
        assert started.json()["slot_state"] == "provisioning"
        drain()  # provisions a sandbox worker, then starts the session on it

    waiting = wait_until(lambda: (r := api.get("/api/v1/session").json())["status"] == "SCAN_QR_CODE" and r)
    assert waiting["qr"]["value"]
    png = base64.b64decode(waiting["qr"]["png_data_url"].removeprefix("data:image/png;base64,"))
    assert png.startswith(b"\x89PNG")

    slot = Slot.objects.get(tier__name="standard")
    httpx.post(f"{slot.base_url}/sandbox/scan", json={"session": waiting["name"]},
               headers={"X-Api-Key": slot.api_key}, timeout=5).raise_for_status()
    working = wait_until(lambda: (r := api.get("/api/v1/session").json())["status"] == "WORKING" and r)
    assert working["qr"] is None and working["me"]

    stopped = api.post("/api/v1/session/stop").json()
    drain()

    assert stopped["status"] == "STOPPED" and stopped["slot"] is None
    assert not Assignment.objects.filter(tenant=tenant, ended_at__isnull=True).exists()
    slot.refresh_from_db()
    assert slot.used == 0
    session = WhatsAppSession.objects.get(tenant=tenant)
    assert [e.status for e in session.events.order_by("pk")][-3:] == ["SCAN_QR_CODE", "WORKING", "STOPPED"]


def test_a_pairing_code_is_given_on_request(pool_env):
    tenant = TenantFactory()
    api = client_for(tenant)
    with override_settings(SANDBOX_AUTO_SCAN_SECONDS=0):
        api.post("/api/v1/session/start")
        drain()

    wait_until(lambda: api.get("/api/v1/session").json()["status"] == "SCAN_QR_CODE")
    body = api.get("/api/v1/session", {"pairing_phone": "+1 555 123 4567"}).json()

    assert len(body["pairing_code"]) >= 8


def test_logout_ends_the_session_and_frees_the_place(pool_env):
    tenant = TenantFactory()
    api = client_for(tenant)
    api.post("/api/v1/session/start")
    drain()
    wait_until(lambda: api.get("/api/v1/session").json()["status"] == "WORKING")

    body = api.post("/api/v1/session/logout").json()
    drain()

    assert body["status"] == "STOPPED"
    assert Slot.objects.get(tier__name="standard").used == 0


def test_the_session_api_is_scoped_to_the_callers_tenant(pool_env):
    a, b = TenantFactory(), TenantFactory()
    client_for(a).post("/api/v1/session/start")

    assert client_for(b).get("/api/v1/session").json()["status"] == "STOPPED"
    assert client_for(b).get("/api/v1/session").json()["name"] is None


def test_usage_reports_month_to_date_cost_against_the_tier_price(pool_env):
    tenant = TenantFactory()
    services.start_session(tenant=tenant)

    body = client_for(tenant).get("/api/v1/usage").json()

    assert body["tier_monthly_price"] == "29.00"
    assert set(body) >= {"slots", "messages", "ai", "total"}
