"""Presence over /ws/inbox/: a person's sockets say whether they are online, away or gone,
and the tenant's other sockets hear of each change."""

import pytest
from asgiref.sync import sync_to_async

from messaging import presence
from tests.factories import MembershipFactory
from tests.inbox.conftest import TIMEOUT, connect_ready, inbox_socket

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


async def next_presence(ws) -> dict:
    frame = await ws.receive_json_from(timeout=TIMEOUT)
    assert frame["type"] == "member.presence", frame
    return frame["data"]


async def test_a_colleague_sees_another_come_online_go_away_come_back_and_leave():
    alice = await sync_to_async(MembershipFactory)()
    bob = await sync_to_async(MembershipFactory)(tenant=alice.tenant)
    outsider = await sync_to_async(MembershipFactory)()

    async with inbox_socket(user=alice.user) as a, inbox_socket(user=outsider.user) as stranger:
        await connect_ready(a)
        await connect_ready(stranger)
        async with inbox_socket(user=bob.user) as b:
            await connect_ready(b)
            assert await next_presence(a) == {"user_id": bob.user_id, "username": bob.user.username,
                                              "status": "online"}

            await b.send_json_to({"type": "presence", "status": "away"})
            assert (await next_presence(a))["status"] == "away"
            status = await sync_to_async(presence.status_of)(tenant_id=alice.tenant_id, user_id=bob.user_id)
            assert status == "away"

            await b.send_json_to({"type": "presence", "status": "online"})
            assert (await next_presence(a))["status"] == "online"
            # bob's own socket is not told about bob (colleagues' presence may reach it)
            told_bob = []
            while not await b.receive_nothing(timeout=0.3):
                told_bob.append((await b.receive_json_from())["data"].get("user_id"))
            assert bob.user_id not in told_bob

        assert (await next_presence(a))["status"] == "offline"
        # another tenant's people hear nothing of it
        assert await stranger.receive_nothing(timeout=0.3)


async def test_a_second_tab_keeps_the_person_online_until_both_close():
    alice = await sync_to_async(MembershipFactory)()
    bob = await sync_to_async(MembershipFactory)(tenant=alice.tenant)

    async with inbox_socket(user=alice.user) as a:
        await connect_ready(a)
        async with inbox_socket(user=bob.user) as tab1:
            await connect_ready(tab1)
            assert (await next_presence(a))["status"] == "online"
            async with inbox_socket(user=bob.user) as tab2:
                await connect_ready(tab2)
            assert await a.receive_nothing(timeout=0.3)  # one tab closed: still online
        assert (await next_presence(a))["status"] == "offline"
