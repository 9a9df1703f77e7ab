import base64
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.test import override_settings
from django.utils import timezone

from pooling import services
from pooling.models import Assignment, Slot, WhatsAppSession
from tests.conftest import client_for
from tests.factories import AssignmentFactory, SlotFactory, TenantFactory
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


def test_the_qr_code_is_served_as_a_png_image_while_the_session_waits_for_a_scan(pool_env):
    # given a tenant with no session yet
    tenant = TenantFactory()
    api = client_for(tenant)
    before = api.get("/api/v1/session/qr.png")

    # when it starts one and the bridge waits for a scan
    with override_settings(SANDBOX_AUTO_SCAN_SECONDS=0):
        api.post("/api/v1/session/start")
        drain()
    wait_until(lambda: api.get("/api/v1/session").json()["status"] == "SCAN_QR_CODE")
    image = api.get("/api/v1/session/qr.png", HTTP_ACCEPT="image/png")

    # then before, a 404 says what to do; now, the PNG itself, never cached
    assert before.status_code == 404 and "POST /api/v1/session/start" in before.json()["detail"]
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert image.content.startswith(b"\x89PNG") and image["Cache-Control"] == "no-store"


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


def test_usage_reports_month_to_date_cost_against_the_tier_price(db):
    # given a tenant on a standard slot (0.04 an hour) since before this month began, alone for
    # a span, then sharing it with a second tenant for another span, then gone
    now = timezone.now()
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    span = (now - month) / 4  # every interval ends before the API's "now"
    slot = SlotFactory()
    tenant = AssignmentFactory(slot=slot, started_at=month - timedelta(hours=30), ended_at=month + 2 * span).tenant
    AssignmentFactory(slot=slot, started_at=month + span, ended_at=month + 3 * span)
    assert tenant.tier.slot_cost_per_hour == Decimal("0.04")

    # when it asks for its usage
    body = client_for(tenant).get("/api/v1/usage").json()

    # then it pays this month's time only: one span alone, half of the shared span, nothing else
    hours = Decimal(span.total_seconds()) / 3600
    expected = hours * Decimal("0.04") + hours * Decimal("0.04") / 2
    assert abs(Decimal(body["slots"]) - expected) <= Decimal("0.005")  # amounts are shown to the cent
    assert (Decimal(body["messages"]), Decimal(body["ai"])) == (0, 0)
    assert Decimal(body["total"]) == Decimal(body["slots"])
    assert body["tier_monthly_price"] == "29.00"
    assert set(body) >= {"slots", "messages", "ai", "total"}
