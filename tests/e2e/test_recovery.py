"""Recovery in seconds and restarts without leftovers, on a platform started as `make run` starts it
(docs/operations.md, "Recovery in seconds" and "Restarts").

Each test sets the slow path out of reach (an hour-long send lease, a sweep that waits an
hour), so a message can only arrive through the mechanism under test. Every wait is on a condition.
"""

import sqlite3
import time

import psutil
import pytest
import redis

from tests.e2e.platform import Api, Launcher, alive, command_line, wait_for

pytestmark = pytest.mark.integration

SENT = {"sent", "delivered", "read"}
SLOW_PATH_OUT_OF_REACH = {"MESSAGE_SEND_LEASE_SECONDS": "3600", "SWEEP_STUCK_AFTER_SECONDS": "3600"}


def query(launcher: Launcher, sql: str) -> list[tuple]:
    with sqlite3.connect(launcher.var_dir / "db.sqlite3", timeout=30) as db:
        return db.execute(sql).fetchall()


def all_sent(api: Api, ids: list[int]) -> bool:
    return all(api.status_of(message_id) in SENT for message_id in ids)


def send(api: Api, n: int) -> list[int]:
    ids = []
    for i in range(n):
        response = api.send(f"recovery {i}")
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    return ids


@pytest.mark.timeout(900)
def test_a_send_worker_killed_mid_send_is_sent_again_without_waiting_for_its_lease(tmp_path):
    # Paced sends wait inline, holding their message in `sending`: a kill finds one there.
    launcher = Launcher(tmp_path, PACING_BURST="1", PACING_INLINE_WAIT_SECONDS="30", **SLOW_PATH_OUT_OF_REACH)
    try:
        launcher.wait_ready(timeout=300)
        api = Api(launcher.base, launcher.api_key())
        api.working_session()
        ids = send(api, 4)
        # Not the first: it goes in the burst, without an inline wait, and is `sending` only for a moment.
        caught = wait_for(lambda: next((m for m in ids[1:] if api.status_of(m) == "sending"), None), timeout=60,
                          what="a message mid-send", interval=0.1)

        pool = launcher.child("run_worker_pool low")
        [worker] = [p for p in pool.children() if alive(p)]
        worker.kill()
        killed_at = time.monotonic()

        wait_for(lambda: not alive(worker), timeout=10, what="the worker to die")
        assert api.status_of(caught) == "sending"
        wait_for(lambda: api.status_of(caught) in SENT, timeout=120, what="the orphaned message sent", interval=0.2)
        print(f"send worker killed -9 mid-send: its message sent {time.monotonic() - killed_at:.1f} s later")
        wait_for(lambda: all_sent(api, ids), timeout=120, what="every message sent", interval=0.5)
    finally:
        launcher.close()


@pytest.mark.timeout(900)
def test_messages_whose_jobs_an_emptied_redis_lost_are_sent_without_the_sweep(tmp_path):
    launcher = Launcher(tmp_path, PACING_BURST="1", **SLOW_PATH_OUT_OF_REACH)
    try:
        launcher.wait_ready(timeout=300)
        api = Api(launcher.base, launcher.api_key())
        api.working_session()
        client = redis.Redis(port=launcher.redis_port)
        wait_for(lambda: client.get("wap:redis-epoch"), timeout=60, what="the first epoch check")
        ids = send(api, 5)
        # Paced: due in a few seconds, their jobs wait in rq's scheduled registry.
        wait_for(lambda: sum(api.status_of(m) == "queued" for m in ids) >= 2, timeout=30, what="paced messages")

        client.flushall()
        flushed_at = time.monotonic()

        wait_for(lambda: all_sent(api, ids), timeout=120, what="every message sent", interval=0.2)
        print(f"FLUSHALL with {len(ids)} paced messages queued: all sent {time.monotonic() - flushed_at:.1f} s later")
    finally:
        launcher.close()


@pytest.mark.timeout(900)
def test_a_restart_takes_back_its_slots_and_leaves_no_new_slot_or_open_alert(tmp_path):
    first = Launcher(tmp_path)
    try:
        first.wait_ready(timeout=300)
        key = first.api_key()
        api = Api(first.base, key)
        api.working_session()
        slots_before = query(first, "SELECT id, pid FROM pooling_slot WHERE state != 'retired'")
        first.process.terminate()
        first.process.wait(30)
    finally:
        first.close()
    assert slots_before

    second = Launcher(tmp_path)
    try:
        second.wait_ready(timeout=300)
        api = Api(second.base, key)
        wait_for(lambda: api.client.get("/session").json().get("status") == "WORKING", timeout=90,
                 what="the session working again", interval=0.3)
        started = query(second, "SELECT datetime('now')")[0][0]
        # Past a health check of this run: one that found a slot dead would have made a new one.
        wait_for(lambda: query(second, f"SELECT count(*) FROM pooling_slot WHERE state = 'ready' "
                                       f"AND last_health_at > '{started}'")[0][0] == len(slots_before),
                 timeout=90, what="a health check of every slot", interval=0.5)
        [message_id] = send(api, 1)
        wait_for(lambda: api.status_of(message_id) in SENT, timeout=60, what="a message sent after the restart")

        slots_after = query(second, "SELECT id, pid FROM pooling_slot WHERE state != 'retired'")
        assert sorted(i for i, _ in slots_after) == sorted(i for i, _ in slots_before)
        assert not set(slots_after) & set(slots_before), "each slot runs a new process"
        assert all(psutil.pid_exists(pid) and "pooling.bridges.sandbox" in command_line(psutil.Process(pid))
                   for _, pid in slots_after)
        assert query(second, "SELECT kind, key FROM operations_alert WHERE resolved_at IS NULL "
                             "AND kind IN ('slot_down', 'pool_busy', 'provisioning_failed')") == []
    finally:
        second.close()
