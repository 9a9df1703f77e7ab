"""The admin issues an API key on a page of its own, never through the cookie-backed messages."""

import re

import pytest
from rest_framework.test import APIClient

from tests.factories import TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def test_an_issued_key_is_shown_once_on_its_own_page_and_nowhere_else(superuser_client):
    tenant = TenantFactory()

    page = superuser_client.post("/admin/tenants/tenant/",
                                 {"action": "issue_key", "_selected_action": [tenant.pk]})
    keys = re.findall(r'<code class="[^"]*issued-api-key[^"]*">([^<]+)</code>', page.content.decode())
    after = superuser_client.get("/admin/tenants/tenant/")

    assert page.status_code == 200 and len(keys) == 1
    assert "no-store" in page["Cache-Control"]
    assert "messages" not in page.cookies  # nothing queued for the cookie-backed message store
    assert keys[0] not in after.content.decode()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {keys[0]}")
    assert api.get("/api/v1/tenant").json()["slug"] == tenant.slug
