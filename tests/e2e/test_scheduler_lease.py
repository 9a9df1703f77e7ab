"""Two schedulers on one Redis, as on two hosts: one enqueues, the other takes over when it is killed."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from redis import Redis
from rq.job import Job

from tests.waiting import wait_until
from waplatform import scheduler_lease
from waplatform.embedded_redis import EmbeddedRedis, free_port

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture
def redis_server(tmp_path):
    server = EmbeddedRedis(port=free_port(), data_dir=tmp_path / "redis", appendonly=False).start()
    yield server
    server.stop()


def start_scheduler(redis_url: str, tmp_path: Path, name: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env.update(REDIS_URL=redis_url, SCHEDULER_LEASE_SECONDS="3", WAP_VAR_DIR=str(tmp_path / name))
    log = open(tmp_path / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "manage.py", "run_scheduler", "waplatform.cron"], cwd=BASE_DIR,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def enqueued(client: Redis, cron_job: str) -> list[tuple[str, float, str]]:
    """(job id, enqueue time, the scheduler that enqueued it), oldest first, from rq's cron job history."""
    found = []
    for job_id, score in client.zrange(f"rq:cron_job:{cron_job}:jobs", 0, -1, withscores=True):
        job = Job.fetch(job_id.decode(), connection=client)
        found.append((job.id, score, job.meta.get("scheduler")))
    return found


def test_one_scheduler_enqueues_and_the_other_takes_over_without_running_an_interval_twice(redis_server, tmp_path):
    client = Redis.from_url(redis_server.url)
    first = start_scheduler(redis_server.url, tmp_path, "a")
    second = start_scheduler(redis_server.url, tmp_path, "b")
    try:
        holder = wait_until(lambda: scheduler_lease.holder(client), timeout=60, message="a scheduler holding the lease")
        wait_until(lambda: enqueued(client, "waplatform.jobs.heartbeat"), timeout=60,
                   message="the heartbeat enqueued")
        active, standby = (first, second) if f":{first.pid}:" in holder else (second, first)
        assert f":{active.pid}:" in holder and f":{standby.pid}:" not in holder
        wait_until(lambda: len(enqueued(client, "waplatform.jobs.relay_events")) >= 2, timeout=60,
                   message="a second relay cycle (every 5 s)")
        # Only the holder enqueued: the standby ran no cycle of its own.
        before = {name: enqueued(client, name) for name in
                  ("waplatform.jobs.heartbeat", "waplatform.jobs.relay_events", "waplatform.jobs.purge_delivered_events")}
        assert {who for jobs in before.values() for _, _, who in jobs} == {holder}

        os.kill(active.pid, signal.SIGKILL)
        active.wait(timeout=10)
        new_holder = wait_until(lambda: (h := scheduler_lease.holder(client)) and h != holder and h, timeout=60,
                                message="the standby taking the lease")
        assert f":{standby.pid}:" in new_holder
        wait_until(lambda: any(who == new_holder for _, _, who in enqueued(client, "waplatform.jobs.relay_events")),
                   timeout=60, message="the new holder's first relay cycle")

        relays = enqueued(client, "waplatform.jobs.relay_events")
        heartbeats = enqueued(client, "waplatform.jobs.heartbeat")
        purges = enqueued(client, "waplatform.jobs.purge_delivered_events")
    finally:
        for process in (first, second):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
    # The hourly purge ran once in all, not once per scheduler; the 30 s heartbeat was not
    # run again by the new holder on taking over (its interval had not passed).
    assert [who for _, _, who in purges] == [holder]
    assert [who for _, _, who in heartbeats][:1] == [holder]
    for (_, earlier, _), (_, later, _) in zip(heartbeats, heartbeats[1:]):
        assert later - earlier >= 30 - 0.5
    # Across the handover the 5 s relay never ran twice in one interval.
    assert {who for _, _, who in relays} == {holder, new_holder}
    for (_, earlier, _), (_, later, _) in zip(relays, relays[1:]):
        assert later - earlier >= 5 - 0.5, relays
    assert not psutil.pid_exists(active.pid) or psutil.Process(active.pid).status() == psutil.STATUS_ZOMBIE
