"""Recovery in seconds: a send worker killed -9 and an emptied Redis are acted on at once,
not when the 90 s lease runs out or the sweep finds the work by its age.

Each test leaves the lease at its default and the sweep out (or its age limit at an hour),
so only the new mechanism can finish the messages."""

import os
import signal
import subprocess
import sys
from datetime import timedelta

import pytest
from django.utils import timezone

from messaging.jobs import reclaim_orphaned_sends, requeue_lost_jobs
from messaging.models import Message
from tests.bridges.conftest import REPO_ROOT
from tests.messaging.conftest import work, work_until
from tests.messaging.test_durability import FINAL, all_final, send_many
from tests.processes import shared_database_url
from tests.waiting import wait_until
from waplatform import lease_owners, redis_epoch
from waplatform.jobs import check_redis_epoch
from waplatform.redis import get_redis

pytestmark = pytest.mark.integration

SENT = {"sent", "delivered", "read"}


def _lease(message_ids, *, owner: str) -> None:
    """As a worker's claim leaves a message: `sending`, leased for the default 90 s, to `owner`."""
    leased_at = timezone.now()
    Message.objects.filter(pk__in=message_ids).update(
        status="sending", status_rank=Message.RANK["sending"], lease_owner=owner,
        lease_expires_at=leased_at + timedelta(seconds=90))


@pytest.mark.timeout(120)
def test_a_send_worker_killed_mid_send_is_recovered_without_waiting_for_its_lease(platform, settings):
    # given a real worker pool sending slowly (300 ms per bridge call), with the default 90 s lease
    settings.PACING_BURST = 100
    settings.SWEEP_STUCK_AFTER_SECONDS = 3600
    platform.sandbox.control("POST", "/sandbox/faults", json={"latency_ms": 300, "error_count": 0})
    ids = send_many(platform, 12)
    env = {**os.environ, "DATABASE_URL": shared_database_url(), "PACING_BURST": "100",
           "PACING_JITTER_SECONDS": "0", "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL}
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker_pool", platform.tenant.tier.send_queue, "--num-workers", "1"],
        cwd=REPO_ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: Message.objects.filter(pk__in=ids, status__in=SENT).exists(), timeout=30,
                   message="the worker to send something")
        wait_until(lambda: Message.objects.filter(pk__in=ids, status="sending").exists(), timeout=30,
                   interval=0.01, message="the worker to be caught mid-send")
    finally:
        # when the whole pool is killed -9 (nothing is left to tidy up after it)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    platform.sandbox.control("DELETE", "/sandbox/faults")
    orphaned = list(Message.objects.filter(pk__in=ids, status="sending", lease_expires_at__gt=timezone.now()
                                           + timedelta(seconds=30)).values_list("pk", flat=True))
    assert orphaned, "a message must be left mid-send, its lease far from over"

    # then the orphan check (every ORPHAN_CHECK_SECONDS) ends the dead worker's leases, and fresh workers finish
    assert reclaim_orphaned_sends() == len(orphaned)
    work_until(lambda: all_final(ids), timeout=40)

    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) <= SENT


def test_a_lease_held_by_a_live_process_is_left_alone(platform):
    # given a message leased by this very process, which is alive and may be talking to the bridge
    [message_id] = send_many(platform, 1)
    _lease([message_id], owner=lease_owners.current_owner())

    # when the orphan check runs
    reclaimed = reclaim_orphaned_sends()

    # then it is not taken over: sending it again could send it twice
    assert reclaimed == 0
    assert Message.objects.get(pk=message_id).status == "sending"
    work()
    assert Message.objects.get(pk=message_id).status == "sending"


def test_a_lease_of_an_unregistered_worker_on_another_host_ends_unless_redis_was_emptied_since(platform):
    """A worker on another host cannot be asked about by pid: its rq registration is the word,
    which its pool deletes when it finds it dead. An emptied Redis forgets every registration,
    so for a lease older than the Redis epoch, absence proves nothing."""
    old, new = send_many(platform, 2)
    remote = lease_owners.SEPARATOR.join(["another-host", "4242", "1700000000.00", "gone-worker"])
    _lease([old], owner=remote)
    get_redis().flushall()
    check_redis_epoch()  # a new epoch begins after `old` was leased
    _lease([new], owner=remote)

    assert reclaim_orphaned_sends() == 1
    work_until(lambda: Message.objects.get(pk=new).status in FINAL)

    assert Message.objects.get(pk=new).status in SENT
    assert Message.objects.get(pk=old).status == "sending"


def test_queued_messages_are_sent_at_once_after_redis_lost_its_data(platform, settings):
    # given queued messages whose jobs are in Redis, and a sweep that would wait an hour for them
    settings.SWEEP_STUCK_AFTER_SECONDS = 3600
    settings.PACING_BURST = 50
    assert check_redis_epoch() in (True, False)  # this Redis is known
    ids = send_many(platform, 6)

    # when Redis loses everything
    get_redis().flushall()
    work()
    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"queued"}

    # then the epoch check (every REDIS_EPOCH_CHECK_SECONDS) notices, and its jobs re-enqueue them
    assert check_redis_epoch() is True
    work_until(lambda: all_final(ids))

    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) <= SENT
    assert check_redis_epoch() is False
    assert redis_epoch.started_at(get_redis()) is not None


def test_a_backed_off_message_keeps_its_time_after_redis_lost_its_data(platform, settings):
    # given a message due in a minute (a retry after a transient error), and its job lost with Redis
    settings.SWEEP_STUCK_AFTER_SECONDS = 3600
    [message_id] = send_many(platform, 1)
    due = timezone.now() + timedelta(seconds=60)
    Message.objects.filter(pk=message_id).update(next_attempt_at=due)
    get_redis().flushall()

    # when the lost jobs are re-enqueued
    report = requeue_lost_jobs()
    work()

    # then it waits for its time, not sent early
    assert "messages_later=1" in report
    assert Message.objects.get(pk=message_id).status == "queued"
