"""The pool schedules delayed jobs itself; a killed worker or a Redis restart does not stop them."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from rq.scheduler import RQScheduler

from tests.processes import stop_group
from tests.waiting import wait_until
from waplatform.redis import get_redis

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def lock_owner() -> str | None:
    owner = get_redis().get(RQScheduler.get_locking_key("maintenance"))
    return owner.decode() if owner else None


def test_the_pool_schedules_delayed_jobs_itself_and_a_killed_worker_takes_nothing_with_it(tmp_path):
    """The pool parent holds the scheduler lock (no scheduler child per worker, ~95 MB each);
    killing a worker must neither move the lock nor stop delayed jobs from running."""
    from rq import Queue

    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(WAP_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="waplatform.settings")
    pool = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker_pool", "maintenance", "--num-workers", "1"],
        cwd=BASE_DIR, env=env, stdout=open(tmp_path / "pool.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        owner = wait_until(lock_owner, timeout=60, message="a scheduler lock")
        assert owner.startswith("pool-")
        worker = wait_until(lambda: psutil.Process(pool.pid).children(), timeout=60, message="a worker")[0]
        assert not worker.children(), "a worker forked a scheduler child"

        worker.kill()
        psutil.wait_procs([worker], timeout=10)
        job = Queue("maintenance", connection=get_redis()).enqueue_in(timedelta(seconds=1), "time.sleep", 0)

        wait_until(lambda: job.get_status(refresh=True) == "finished", timeout=60,
                 message="the delayed job run by the replacement worker")
        assert lock_owner() == owner
    finally:
        stop_group(pool, timeout=20)
    assert lock_owner() is None  # released on a clean stop


def test_delayed_jobs_run_again_soon_after_redis_restarted_empty(tmp_path):
    """rq's scheduler process used to die on the first connection error, and its worker
    started a new one only at its next maintenance, 10 minutes later."""
    from redis import Redis
    from rq import Queue

    from waplatform.embedded_redis import EmbeddedRedis, free_port

    port = free_port()
    own_redis = EmbeddedRedis(port=port, data_dir=tmp_path / "redis", appendonly=False).start()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(WAP_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="waplatform.settings",
               REDIS_URL=own_redis.url)
    for name in ("REDIS_QUEUES_URL", "REDIS_CHANNELS_URL", "REDIS_CACHE_URL"):
        env.pop(name, None)
    pool = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker_pool", "maintenance", "--num-workers", "1"],
        cwd=BASE_DIR, env=env, stdout=open(tmp_path / "pool.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    client = Redis(port=port)
    try:
        wait_until(lambda: client.get(RQScheduler.get_locking_key("maintenance")), timeout=60, message="a scheduler lock")
        own_redis.process.kill()
        own_redis.process.wait()
        # The scheduler's next cycle meets the outage (and, before the fix, ended there).
        wait_until(lambda: "Scheduler: Redis unavailable" in (tmp_path / "pool.log").read_text(), timeout=30,
                   message="the scheduler meeting the outage")
        own_redis = EmbeddedRedis(port=port, data_dir=tmp_path / "redis", appendonly=False).start()

        job = Queue("maintenance", connection=client).enqueue_in(timedelta(seconds=1), "time.sleep", 0)
        wait_until(lambda: job.get_status(refresh=True) == "finished", timeout=20,
                 message="the delayed job run after the restart")
    finally:
        stop_group(pool, timeout=20)
        own_redis.stop()
