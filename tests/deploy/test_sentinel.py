"""Redis Sentinel: the Redis master killed -9 under the whole platform, the promoted replica followed.

A Redis primary, a replica and three Sentinels on loopback (tests/deploy/redis_sentinel.py);
the platform started by its launcher, as `make run` starts it, with REDIS_URL set to the
Sentinel URL, so every role (daphne, the worker pools, the scheduler, the channel layer)
connects through the sentinels. Messages accepted before, during and after the failover
are all delivered by the sandbox bridge, and a live inbox socket opened before the kill
still receives events after it.
"""

import json

import httpx
import pytest

from tests.deploy.redis_sentinel import SentinelCluster
from tests.processes import shared_database_url
from tests.e2e.platform import Api, Launcher, wait_for

# Transactional: the launcher runs on the test database (already migrated, so its migrate
# step is quick) and its demo tenants are flushed after.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(240), pytest.mark.django_db(transaction=True)]


def _all_delivered(api: Api, accepted) -> bool:
    # One list call per poll: the demo tenant's API budget is 60 requests a minute.
    page = api.client.get("/messages", params={"page_size": 100})
    assert page.status_code == 200, page.text
    statuses = {m["id"]: m["status"] for m in page.json()["results"]}
    # The sandbox bridge reports delivered, then read, in quick succession.
    return all(statuses.get(r.json()["id"]) in ("delivered", "read") for r in accepted)


def _frames_until(socket, predicate, timeout: float) -> list[dict]:
    frames: list[dict] = []

    def seen():
        try:
            frames.append(json.loads(socket.recv(timeout=0.5)))
        except TimeoutError:
            pass
        return any(predicate(frame) for frame in frames)

    wait_for(seen, timeout=timeout, what="an inbox event after the failover", interval=0)
    return frames


def test_a_killed_redis_master_is_followed_and_no_accepted_message_is_lost(tmp_path):
    from websockets.sync.client import connect

    (tmp_path / "redis").mkdir()
    cluster = SentinelCluster(tmp_path / "redis").start()
    launcher = Launcher(tmp_path, REDIS_URL=cluster.url, DATABASE_URL=shared_database_url())
    try:
        launcher.wait_ready()
        key = launcher.api_key()
        api = Api(launcher.base, key)
        api.working_session()
        ws_url = f"ws://127.0.0.1:{launcher.port}/ws/inbox/"
        with connect(ws_url, origin=launcher.base, additional_headers={"Authorization": f"Bearer {key}"},
                     open_timeout=15, close_timeout=5) as socket:
            assert json.loads(socket.recv(timeout=15))["type"] == "inbox.ready"
            accepted = [api.send(f"before the failover {i}") for i in range(3)]
            wait_for(lambda: _all_delivered(api, accepted), timeout=60, what="the first messages delivered",
                     interval=1)

            old = cluster.kill_primary()
            # Accepted while the sentinels have not yet noticed (down-after 1 s) and while they elect.
            during = [api.send(f"during the failover {i}") for i in range(3)]
            new = cluster.wait_for_promotion(old)
            after = [api.send(f"after the failover {i}") for i in range(3)]
            accepted += during + after

            assert [r.status_code for r in accepted] == [202] * len(accepted), [r.text for r in accepted]
            last_id = after[-1].json()["id"]
            frames = _frames_until(socket, lambda f: json.dumps(f).find(str(last_id)) >= 0, timeout=60)

        wait_for(lambda: _all_delivered(api, accepted), timeout=60, what="every accepted message delivered",
                 interval=1)
        assert frames
        # Queues, the scheduler's heartbeat and rq's own keys now live on the promoted replica.
        promoted = cluster.client(new)
        assert promoted.info("replication")["role"] == "master"
        wait_for(lambda: promoted.get("wap:heartbeat") and promoted.exists("rq:workers"), timeout=40,
                 what="heartbeat and workers on the new master")
        readyz = httpx.get(f"{launcher.base}/readyz", timeout=10)
        assert readyz.status_code == 200, readyz.text
        assert launcher.process.poll() is None
    finally:
        launcher.close()
        cluster.stop()
