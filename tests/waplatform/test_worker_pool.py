"""A killed worker's scheduler child goes with it, and its scheduler lock is not kept."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from rq.scheduler import RQScheduler

from waplatform.redis import get_redis

BASE_DIR = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def wait_for(predicate, *, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout} s")


def lock_owner() -> str | None:
    owner = get_redis().get(RQScheduler.get_locking_key("maintenance"))
    return owner.decode() if owner else None


def test_a_killed_worker_takes_its_scheduler_child_and_lock_with_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(WAP_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="waplatform.settings")
    pool = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker_pool", "maintenance", "--num-workers", "1"],
        cwd=BASE_DIR, env=env, stdout=open(tmp_path / "pool.log", "w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        first_owner = wait_for(lock_owner, timeout=60, what="a scheduler lock")

        def worker_with_scheduler():
            for worker in psutil.Process(pool.pid).children():
                if worker.children():
                    return worker, worker.children()[0]
            return None

        worker, scheduler = wait_for(worker_with_scheduler, timeout=30, what="a worker's scheduler child")
        worker.kill()

        psutil.wait_procs([scheduler], timeout=10)
        assert not scheduler.is_running() or scheduler.status() == psutil.STATUS_ZOMBIE, "scheduler child outlived its worker"
        # The replacement worker takes the lock over at once, not after the lock's TTL.
        new_owner = wait_for(lambda: (o := lock_owner()) and o != first_owner and o, timeout=15,
                             what="the lock taken over by the replacement worker")
        assert new_owner != first_owner
    finally:
        os.killpg(pool.pid, signal.SIGTERM)
        try:
            pool.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(pool.pid, signal.SIGKILL)
            pool.wait()
