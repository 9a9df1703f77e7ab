"""Onboarding from an empty platform to a support agent signed in to the tenant's inbox."""

import base64

import pytest
from django.core.management import call_command
from django.test import Client

from tenants.models import ApiKey, Membership, Tenant
from tests.conftest import client_for
from tests.factories import OperatorFactory, UserFactory

pytestmark = pytest.mark.django_db


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_the_staff_api_onboards_a_tenant_whose_inbox_user_signs_in_and_sees_it():
    # given an empty platform but for its operator (HTTP Basic, as a script would)
    assert not Tenant.objects.exists()
    OperatorFactory(username="ops", password="ops-password")
    staff = Client(HTTP_AUTHORIZATION=_basic("ops", "ops-password"))

    # when the operator onboards a tenant
    response = staff.post("/api/v1/staff/tenants", {"name": "Acme Support", "tier": "professional",
                                                    "inbox_username": "ana", "inbox_email": "ana@acme.example"},
                          content_type="application/json")

    # then the key works once handed over, and the inbox user signs in and lands on the tenant
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["tenant"]["slug"] == "acme-support" and body["tenant"]["tier"] == "professional"
    api = Client(HTTP_AUTHORIZATION=f"Bearer {body['api_key']}")
    assert api.get("/api/v1/tenant").json()["slug"] == "acme-support"
    assert any("session/start" in step for step in body["next_steps"])
    agent = Client()
    signed_in = agent.post("/inbox/login/", {"username": "ana", "password": body["inbox"]["password"]})
    assert signed_in.status_code == 302
    inbox = agent.get("/inbox/")
    assert inbox.status_code == 200 and b"Acme Support" in inbox.content
    assert Membership.objects.get(user__username="ana").role == "owner"


def test_the_staff_api_refuses_tenant_keys_and_non_staff(api_client):
    member = UserFactory(username="bob", password="bob-password")
    tenants_before = Tenant.objects.count()

    with_key = api_client.post("/api/v1/staff/tenants", {"name": "X", "inbox_username": "x"}, format="json")

    as_member = Client(HTTP_AUTHORIZATION=_basic(member.username, "bob-password")).post(
        "/api/v1/staff/tenants", {"name": "X", "inbox_username": "x"}, content_type="application/json")

    assert with_key.status_code in (401, 403) and as_member.status_code == 403
    assert Tenant.objects.count() == tenants_before


def test_onboard_tenant_prints_the_key_and_password_once_with_the_next_steps(capsys):
    call_command("onboard_tenant", "Beta Shop", "--inbox-user", "bea", "--tier", "standard")

    out = capsys.readouterr().out
    tenant = Tenant.objects.get(slug="beta-shop")
    key_line = next(line for line in out.splitlines() if line.startswith("API key"))
    key = key_line.split(": ", 1)[1]
    assert Client(HTTP_AUTHORIZATION=f"Bearer {key}").get("/api/v1/tenant").json()["name"] == "Beta Shop"
    assert "password (shown once)" in out and "Next:" in out
    assert Membership.objects.filter(tenant=tenant, user__username="bea").exists()


def test_the_admin_add_page_onboards_and_shows_the_secrets_on_a_page_of_their_own(staff_client):
    form = staff_client.get("/admin/tenants/tenant/add/")
    response = staff_client.post("/admin/tenants/tenant/add/", {
        "name": "Gamma", "tier": "standard", "slug": "", "inbox_username": "gil", "inbox_email": ""})

    assert form.status_code == 200 and b"inbox_username" in form.content
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    page = response.content.decode()
    api_key = ApiKey.objects.get(tenant__slug="gamma")
    assert f"wap_{api_key.prefix}_" in page and 'id="next-steps"' in page
    # and the tenant's page shows its overview with the next step for the session
    overview = staff_client.get(f"/admin/tenants/tenant/{api_key.tenant_id}/change/").content.decode()
    assert 'id="tenant-overview"' in overview and "POST /api/v1/session/start" in overview
    assert f"{api_key.prefix}…" in overview
