"""The /inbox/ page and its two small endpoints: sign-in, tenant choice, tenant scoping."""

import pytest
from django.test import Client

from agents.services import handoff
from messaging.services import get_or_create_contact, get_or_create_conversation
from tests.factories import MembershipFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def conversation_of(tenant, wa_id="4915100000001"):
    contact = get_or_create_contact(tenant_id=tenant.pk, wa_id=wa_id)
    return get_or_create_conversation(tenant_id=tenant.pk, contact=contact)[0]


def csrf_headers(client, tenant) -> dict:
    client.get("/inbox/")
    return {"X-CSRFToken": client.cookies["csrftoken"].value, "X-Tenant": tenant.slug}


def test_the_inbox_sends_strangers_to_its_sign_in_page():
    response = Client().get("/inbox/")

    assert response.status_code == 302
    assert response["Location"].startswith("/inbox/login/")


def test_a_member_opens_their_tenants_inbox_with_its_socket_path():
    member = MembershipFactory()

    response = signed_in(member.user).get("/inbox/")

    assert response.status_code == 200
    assert response.context["config"]["socketPath"] == f"/ws/inbox/?tenant={member.tenant.slug}"


def test_an_account_without_a_tenant_is_told_so():
    response = signed_in(UserFactory()).get("/inbox/")

    assert response.status_code == 403
    assert b"not a member of any tenant" in response.content


def test_staff_choose_any_tenant_but_members_only_their_own():
    staff, member, other = UserFactory(is_staff=True), MembershipFactory(), TenantFactory()

    chooser = signed_in(staff).get("/inbox/")
    chosen = signed_in(staff).get(f"/inbox/?tenant={other.slug}")
    refused = signed_in(member.user).get(f"/inbox/?tenant={other.slug}")

    assert chooser.status_code == 200 and other.slug.encode() in chooser.content
    assert chosen.context["config"]["tenant"]["slug"] == other.slug
    assert refused.status_code == 404


def test_marking_read_is_scoped_to_the_callers_tenant():
    member = MembershipFactory()
    mine, theirs = conversation_of(member.tenant), conversation_of(TenantFactory())
    client = signed_in(member.user)
    headers = csrf_headers(client, member.tenant)

    ok = client.post(f"/inbox/api/conversations/{mine.pk}/read", headers=headers)
    not_found = client.post(f"/inbox/api/conversations/{theirs.pk}/read", headers=headers)
    no_csrf = signed_in(member.user).post(f"/inbox/api/conversations/{mine.pk}/read",
                                          headers={"X-Tenant": member.tenant.slug})

    assert (ok.status_code, not_found.status_code, no_csrf.status_code) == (204, 404, 403)


def test_agent_states_never_show_another_tenants_conversations():
    member = MembershipFactory()
    mine, theirs = conversation_of(member.tenant), conversation_of(TenantFactory())
    client = signed_in(member.user)

    handoff(conversation=mine)
    handoff(conversation=theirs)
    body = client.get(f"/inbox/api/agent-states?ids={mine.pk},{theirs.pk}",
                      headers={"X-Tenant": member.tenant.slug}).json()

    assert body["states"] == {str(mine.pk): {"active_agent": None, "owner": "human", "automation_paused_until": None}}
