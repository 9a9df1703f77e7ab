"""The live inbox calls the same API with the person's Django session instead of an API key."""

from django.test import Client

from tests.factories import MembershipFactory, TenantFactory, UserFactory


def signed_in(user, **kwargs) -> Client:
    client = Client(**kwargs)
    client.force_login(user)
    return client


def test_a_member_acts_for_their_tenant(db):
    membership = MembershipFactory()

    body = signed_in(membership.user).get("/api/v1/tenant").json()

    assert body["slug"] == membership.tenant.slug


def test_a_member_cannot_name_another_tenant(db):
    membership = MembershipFactory()
    other = TenantFactory()

    response = signed_in(membership.user).get("/api/v1/api-keys", headers={"X-Tenant": other.slug})

    assert response.status_code == 403
    assert "X-Tenant" in response.json()["detail"]


def test_staff_choose_a_tenant_with_x_tenant(db):
    staff = UserFactory(is_staff=True)
    tenant = TenantFactory()
    client = signed_in(staff)

    assert client.get("/api/v1/tenant").status_code == 403
    assert client.get("/api/v1/tenant", headers={"X-Tenant": tenant.slug}).json()["slug"] == tenant.slug


def test_someone_in_no_tenant_is_refused(db):
    response = signed_in(UserFactory()).get("/api/v1/tenant")

    assert response.status_code == 403
    assert "not a member" in response.json()["detail"]


def test_session_writes_need_the_csrf_token(db):
    membership = MembershipFactory()
    client = signed_in(membership.user, enforce_csrf_checks=True)

    response = client.post("/api/v1/api-keys", {"name": "x"}, content_type="application/json")

    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
