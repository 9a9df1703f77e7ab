from rest_framework.test import APIClient

from tenants.models import ApiKey
from tenants.services import issue_api_key, revoke_api_key
from tests.factories import TenantFactory


def bearer(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_a_key_authenticates_its_tenant(tenant):
    issued = issue_api_key(tenant=tenant)

    response = bearer(issued.plaintext).get("/api/v1/tenant")

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["slug"], body["tier"]) == (tenant.pk, tenant.slug, "standard")
    assert body["limits"]["tenants_per_slot"] == 10
    assert body["limits"]["api_rate_limit_per_minute"] > 0


def test_keys_are_stored_hashed_with_a_visible_prefix(tenant):
    issued = issue_api_key(tenant=tenant)

    row = ApiKey.objects.get(pk=issued.api_key.pk)
    stored = [str(v) for v in ApiKey.objects.filter(pk=row.pk).values_list(*[f.attname for f in ApiKey._meta.fields]).get()]
    assert issued.plaintext not in stored
    assert issued.plaintext.startswith(f"wap_{row.prefix}_")
    assert len(row.key_hash) == 64


def test_a_revoked_key_is_refused(tenant):
    issued = issue_api_key(tenant=tenant)
    revoke_api_key(api_key=issued.api_key)

    response = bearer(issued.plaintext).get("/api/v1/tenant")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_requests_without_a_key_or_with_a_wrong_scheme_say_what_to_send(db):
    missing = APIClient().get("/api/v1/tenant")
    wrong = APIClient(HTTP_AUTHORIZATION="Token abc").get("/api/v1/tenant")

    assert missing.status_code == 401 and missing.json()["code"] == "not_authenticated"
    assert wrong.status_code == 401 and "Bearer" in wrong.json()["detail"]


def test_last_used_time_is_recorded(tenant):
    issued = issue_api_key(tenant=tenant)

    bearer(issued.plaintext).get("/api/v1/tenant")

    issued.api_key.refresh_from_db()
    assert issued.api_key.last_used_at is not None


def test_a_new_key_is_shown_once_and_can_be_revoked_through_the_api(api_client):
    created = api_client.post("/api/v1/api-keys", {"name": "ci"}, format="json")
    assert created.status_code == 201
    new_key = created.json()["key"]

    listed = api_client.get("/api/v1/api-keys").json()
    assert all("key" not in row for row in listed)
    assert bearer(new_key).get("/api/v1/tenant").status_code == 200

    assert api_client.delete(f"/api/v1/api-keys/{created.json()['id']}").status_code == 204
    assert bearer(new_key).get("/api/v1/tenant").status_code == 401


def test_a_key_of_tenant_a_never_sees_tenant_b_rows(api_client, tenant, other_tenant):
    b_key = issue_api_key(tenant=other_tenant).api_key

    listed = api_client.get("/api/v1/api-keys").json()
    fetched = api_client.get(f"/api/v1/api-keys/{b_key.pk}")
    revoked = api_client.delete(f"/api/v1/api-keys/{b_key.pk}")

    assert {row["id"] for row in listed}.isdisjoint({b_key.pk})
    assert fetched.status_code == 404 and fetched.json()["code"] == "not_found"
    assert revoked.status_code == 404
    b_key.refresh_from_db()
    assert b_key.revoked_at is None


def test_a_suspended_tenant_can_read_but_not_write(api_client, tenant):
    tenant.status = "suspended"
    tenant.save()

    assert api_client.get("/api/v1/tenant").status_code == 200
    refused = api_client.post("/api/v1/api-keys", {"name": "x"}, format="json")
    assert refused.status_code == 403 and refused.json()["code"] == "tenant_suspended"


def test_the_scoped_base_refuses_a_subclass_that_overrides_get_queryset():
    import pytest

    from tenants.api_base import TenantScopedViewSet

    with pytest.raises(TypeError, match="safely_get_queryset"):

        class Leaky(TenantScopedViewSet):
            def get_queryset(self):
                return ApiKey.objects.all()


def test_create_tenant_and_create_api_key_commands_print_the_key_last(db):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("create_tenant", "Shop Ltd", "--tier", "professional", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    assert bearer(key).get("/api/v1/tenant").json()["tier"] == "professional"

    out = StringIO()
    call_command("create_api_key", "shop-ltd", stdout=out)
    second = out.getvalue().strip().splitlines()[-1]
    assert second != key and bearer(second).get("/api/v1/tenant").json()["slug"] == "shop-ltd"


def test_create_tenant_refuses_an_unknown_tier_naming_the_choices(db):
    import pytest
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="standard"):
        call_command("create_tenant", "X", "--tier", "gold")
