"""The /ws/inbox/ consumer: who may listen, to what, and how many at once.

Events are published through the platform's one event bus
(waplatform.events.publish_event), which reaches the sockets through the
live-inbox subscriber and the real Redis channel layer.
"""

import pytest
from asgiref.sync import sync_to_async

from messaging.consumers import acquire_connection, live_connections
from operations.metrics import websocket_connections
from tenants.services import issue_api_key
from tests.factories import MembershipFactory, TenantFactory, UserFactory
from tests.conftest import client_for
from tests.inbox.conftest import TIMEOUT, connect_ready, connect_refused, inbox_socket
from tests.waiting import async_wait_until
from waplatform.events import publish_event
from waplatform.redis import get_redis

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

publish = sync_to_async(publish_event)


async def test_a_socket_without_credentials_is_closed_with_4401():
    async with inbox_socket() as ws:
        refusal, close = await connect_refused(ws)

    assert refusal == {"type": "inbox.refused", "code": 4401, "reason": refusal["reason"]}
    assert "/api/v1/ws-ticket" in refusal["reason"] and "Bearer <api key>" in refusal["reason"]
    assert close["code"] == 4401


async def test_an_unknown_api_key_is_closed_with_4401():
    async with inbox_socket(headers=[(b"authorization", b"Bearer wap_not-a-real-key")]) as ws:
        refusal, close = await connect_refused(ws)

    assert close["code"] == 4401
    assert refusal["reason"] == "Unknown or revoked API key."


async def test_a_socket_opened_from_another_site_is_rejected_at_the_handshake():
    member = await sync_to_async(MembershipFactory)()

    async with inbox_socket(user=member.user, origin="https://evil.example") as ws:
        connected, _ = await ws.connect(timeout=TIMEOUT)

    assert not connected


async def test_members_receive_their_own_tenants_events_and_never_another_tenants():
    # given two tenants, each with a member watching its inbox
    alice = await sync_to_async(MembershipFactory)()
    bob = await sync_to_async(MembershipFactory)()
    async with inbox_socket(user=alice.user) as alice_ws, inbox_socket(user=bob.user) as bob_ws:
        assert (await connect_ready(alice_ws))["tenant"] == alice.tenant_id
        assert (await connect_ready(bob_ws))["tenant"] == bob.tenant_id

        # when each tenant has an event, Bob's first
        bobs = await publish(tenant_id=bob.tenant_id, type="message.received", data={"text": "for bob"})
        alices = await publish(tenant_id=alice.tenant_id, type="message.received", data={"text": "for alice"})

        # then each socket gets exactly its own, as the envelope published
        assert await alice_ws.receive_json_from(timeout=TIMEOUT) == alices
        assert await bob_ws.receive_json_from(timeout=TIMEOUT) == bobs
        assert await alice_ws.receive_nothing(timeout=0.5)
        assert await bob_ws.receive_nothing(timeout=0.5)


async def test_a_member_asking_for_another_tenant_is_closed_with_4403():
    member = await sync_to_async(MembershipFactory)()
    other = await sync_to_async(TenantFactory)()

    async with inbox_socket(f"/ws/inbox/?tenant={other.slug}", user=member.user) as ws:
        refusal, close = await connect_refused(ws)

    assert close["code"] == 4403
    assert other.slug in refusal["reason"]


async def test_a_signed_in_person_without_a_tenant_is_closed_with_4403():
    user = await sync_to_async(UserFactory)()

    async with inbox_socket(user=user) as ws:
        refusal, close = await connect_refused(ws)

    assert close["code"] == 4403
    assert refusal["reason"] == "This account is not a member of any tenant."


async def test_an_api_key_in_the_query_string_is_refused_naming_the_ticket():
    tenant = await sync_to_async(TenantFactory)()
    key = (await sync_to_async(issue_api_key)(tenant=tenant)).plaintext

    async with inbox_socket(f"/ws/inbox/?token={key}") as ws:
        refusal, close = await connect_refused(ws)

    assert close["code"] == 4401
    assert "/api/v1/ws-ticket" in refusal["reason"]


def ticket_for(tenant) -> dict:
    response = client_for(tenant).post("/api/v1/ws-ticket")
    assert response.status_code == 201, response.content
    return response.json()


async def test_a_ticket_opens_one_socket_of_its_tenant_and_only_once():
    tenant = await sync_to_async(TenantFactory)()
    issued = await sync_to_async(ticket_for)(tenant)

    async with inbox_socket(f"/ws/inbox/?ticket={issued['ticket']}") as ws:
        hello = await connect_ready(ws)
        event = await publish(tenant_id=tenant.pk, type="session.status", data={"status": "WORKING"})
        received = await ws.receive_json_from(timeout=TIMEOUT)
    async with inbox_socket(f"/ws/inbox/?ticket={issued['ticket']}") as again:
        refusal, close = await connect_refused(again)

    assert issued["expires_in"] == 30 and len(issued["ticket"]) >= 40
    assert hello == {"type": "inbox.ready", "tenant": tenant.pk, "data": {"tenant": tenant.slug, "staff": False}}
    assert received == event
    assert close["code"] == 4401 and "used or expired" in refusal["reason"]


async def test_an_expired_ticket_is_closed_with_4401(settings):
    settings.WS_TICKET_SECONDS = 1
    tenant = await sync_to_async(TenantFactory)()
    issued = await sync_to_async(ticket_for)(tenant)
    await async_wait_until(lambda: not get_redis().keys("wap:ws-ticket:*"), message="the ticket to expire")

    async with inbox_socket(f"/ws/inbox/?ticket={issued['ticket']}") as ws:
        refusal, close = await connect_refused(ws)

    assert close["code"] == 4401 and "POST /api/v1/ws-ticket" in refusal["reason"]


async def test_a_ticket_of_one_tenant_never_joins_another_tenants_group():
    a, b = await sync_to_async(TenantFactory)(), await sync_to_async(TenantFactory)()
    member_of_b = await sync_to_async(MembershipFactory)(tenant=b)
    issued = await sync_to_async(ticket_for)(a)

    # A's ticket, asking for B by slug and carrying the session of B's member: the ticket decides.
    async with inbox_socket(f"/ws/inbox/?ticket={issued['ticket']}&tenant={b.slug}", user=member_of_b.user) as ws:
        hello = await connect_ready(ws)
        await publish(tenant_id=b.pk, type="message.received", data={"text": "for b"})
        for_a = await publish(tenant_id=a.pk, type="message.received", data={"text": "for a"})

        assert hello["tenant"] == a.pk
        assert await ws.receive_json_from(timeout=TIMEOUT) == for_a
        assert await ws.receive_nothing(timeout=0.5)


async def test_unknown_api_keys_on_the_socket_count_toward_the_address_limit(settings):
    settings.API_KEY_FAILURE_LIMIT = 2
    bad = [(b"authorization", b"Bearer wap_not-a-real-key")]
    closes = []
    for _ in range(3):
        async with inbox_socket(headers=bad) as ws:
            closes.append((await connect_refused(ws))[1]["code"])

    assert closes == [4401, 4401, 4429]


async def test_an_integration_listens_with_its_api_key_in_the_authorization_header():
    tenant = await sync_to_async(TenantFactory)()
    key = (await sync_to_async(issue_api_key)(tenant=tenant)).plaintext

    async with inbox_socket(headers=[(b"authorization", f"Bearer {key}".encode())]) as ws:
        hello = await connect_ready(ws)

    assert hello["tenant"] == tenant.pk


async def test_staff_choose_a_tenant_and_also_receive_alerts():
    staff = await sync_to_async(UserFactory)(is_staff=True)
    tenant = await sync_to_async(TenantFactory)()
    other = await sync_to_async(TenantFactory)()

    async with inbox_socket(f"/ws/inbox/?tenant={tenant.slug}", user=staff) as ws:
        hello = await connect_ready(ws)
        await publish(tenant_id=other.pk, type="message.received", data={"text": "not watched"})
        event = await publish(tenant_id=tenant.pk, type="message.received", data={"text": "watched"})
        alert = await publish(tenant_id=None, type="alert.opened", data={"kind": "slot_down", "message": "slot-1 is down"})

        assert hello["data"] == {"tenant": tenant.slug, "staff": True}
        assert await ws.receive_json_from(timeout=TIMEOUT) == event
        assert await ws.receive_json_from(timeout=TIMEOUT) == alert
        assert await ws.receive_nothing(timeout=0.5)


async def test_members_never_receive_alerts():
    member = await sync_to_async(MembershipFactory)()

    async with inbox_socket(user=member.user) as ws:
        await connect_ready(ws)
        await publish(tenant_id=None, type="alert.opened", data={"kind": "slot_down", "message": "slot-1 is down"})

        assert await ws.receive_nothing(timeout=0.5)


async def test_the_connection_cap_closes_one_socket_too_many_with_4429_and_frees_a_place_on_close(settings):
    settings.INBOX_MAX_CONNECTIONS_PER_TENANT = 2
    member = await sync_to_async(MembershipFactory)()
    other_tenants_member = await sync_to_async(MembershipFactory)()

    async with inbox_socket(user=member.user) as first, inbox_socket(user=member.user) as second:
        await connect_ready(first)
        await connect_ready(second)
        async with inbox_socket(user=member.user) as third:
            refusal, close = await connect_refused(third)
        async with inbox_socket(user=other_tenants_member.user) as elsewhere:
            await connect_ready(elsewhere)  # the cap is per tenant
        await first.disconnect()
        async with inbox_socket(user=member.user) as replacement:
            await connect_ready(replacement)

    assert close["code"] == 4429
    assert "already has 2 live inbox connections" in refusal["reason"]
    assert await sync_to_async(live_connections)(tenant_id=member.tenant_id) == 0


async def test_connections_of_a_process_that_died_stop_counting_after_their_lease(settings):
    """A daphne killed with open sockets never runs their disconnect: its places
    in the cap must come back by themselves, or the tenant stays locked out."""
    settings.INBOX_MAX_CONNECTIONS_PER_TENANT = 1
    settings.INBOX_CONNECTION_LEASE_SECONDS = 1.0
    member = await sync_to_async(MembershipFactory)()
    assert await sync_to_async(acquire_connection)(tenant_id=member.tenant_id, member="specific.dead-process!x")

    async with inbox_socket(user=member.user) as refused:
        _, close = await connect_refused(refused)
    await async_wait_until(lambda: live_connections(tenant_id=member.tenant_id) == 0,
                           message="the closed socket to leave the registry")
    async with inbox_socket(user=member.user) as ws:
        await connect_ready(ws)

    assert close["code"] == 4429


async def test_a_live_socket_keeps_its_place_past_the_lease(settings):
    settings.INBOX_MAX_CONNECTIONS_PER_TENANT = 1
    settings.INBOX_CONNECTION_LEASE_SECONDS = 0.6
    member = await sync_to_async(MembershipFactory)()

    async with inbox_socket(user=member.user) as ws:
        await connect_ready(ws)
        await ws.receive_nothing(timeout=1.5)  # 2.5 leases: renewed by the consumer meanwhile
        async with inbox_socket(user=member.user) as second:
            _, close = await connect_refused(second)

    assert close["code"] == 4429


async def test_the_websocket_gauge_counts_open_sockets():
    member = await sync_to_async(MembershipFactory)()
    before = await sync_to_async(websocket_connections)()

    async with inbox_socket(user=member.user) as ws:
        await connect_ready(ws)
        during = await sync_to_async(websocket_connections)()
    after = await sync_to_async(websocket_connections)()

    assert (during - before, after - before) == (1, 0)


async def test_pings_are_answered():
    member = await sync_to_async(MembershipFactory)()

    async with inbox_socket(user=member.user) as ws:
        await connect_ready(ws)
        await ws.send_json_to({"type": "ping"})

        assert await ws.receive_json_from(timeout=TIMEOUT) == {"type": "pong"}
