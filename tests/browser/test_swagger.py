"""A developer tries the API from its Swagger page with nothing but an API key."""

import re

import httpx
import pytest
from playwright.sync_api import expect

from tenants.models import Tier
from tenants.services import issue_api_key
from tests.browser.conftest import screenshot
from tests.factories import TenantFactory

pytestmark = pytest.mark.integration


def test_authorize_with_an_api_key_then_try_it_out_on_the_tenant_answers_200(page, running_platform):
    # given a tenant and its API key
    tenant = TenantFactory(name="Swagger Shop")
    key = issue_api_key(tenant=tenant).plaintext

    # when the developer opens the docs, authorizes with the key and tries GET /api/v1/tenant
    page.goto(f"{running_platform.url}/api/docs/")
    page.locator("button.authorize").first.click()
    page.locator(".modal-ux input[type=text]").first.fill(key)
    page.locator(".modal-ux .auth-btn-wrapper button.authorize").first.click()
    page.locator(".modal-ux button.btn-done").first.click()
    operation = page.locator("#operations-tenant-tenant_retrieve")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()

    # then the live response is a 200 with the tenant in it
    status = operation.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text(re.compile(r"^\s*200"))
    expect(operation.locator(".live-responses-table td.response-col_description").last).to_contain_text("Swagger Shop")
    screenshot(page, "swagger-try-it-out")


def test_a_throttled_call_carries_its_reason_phrase_through_daphne(running_platform):
    # given a tenant whose tier allows one call a minute
    tenant = TenantFactory()
    Tier.objects.filter(pk=tenant.tier_id).update(api_rate_limit_per_minute=1)
    headers = {"Authorization": f"Bearer {issue_api_key(tenant=tenant).plaintext}"}

    # when it calls twice
    first = httpx.get(f"{running_platform.url}/api/v1/tenant", headers=headers, timeout=10)
    second = httpx.get(f"{running_platform.url}/api/v1/tenant", headers=headers, timeout=10)

    # then the second status line says why, as HTTP clients and proxies log it
    assert first.status_code == 200
    assert (second.status_code, second.reason_phrase) == (429, "Too Many Requests")
    assert second.json()["code"] == "throttled" and int(second.headers["Retry-After"]) >= 1
