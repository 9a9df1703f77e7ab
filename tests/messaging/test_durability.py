"""Nothing accepted is lost: emptied Redis, killed workers, transient and permanent bridge errors, pacing."""

import os
from datetime import timedelta
import signal
import subprocess
import sys

import pytest
from django.db import connection
from django.utils import timezone

from messaging.models import Message
from messaging.services import sweep
from tests.bridges.conftest import REPO_ROOT
from tests.messaging.conftest import work, work_until
from tests.waiting import wait_until
from waplatform.redis import get_redis

pytestmark = pytest.mark.integration

FINAL = {"sent", "delivered", "read", "failed"}


def send_many(platform, n: int, prefix: str = "1650555") -> list[int]:
    ids = []
    for i in range(n):
        response = platform.api.post("/api/v1/messages", {"to": f"{prefix}{i:04d}", "text": {"body": f"m{i}"}},
                                     format="json")
        assert response.status_code == 202, response.content
        ids.append(response.json()["id"])
    return ids


def all_final(ids) -> bool:
    return set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) <= FINAL


def test_emptying_redis_then_sweeping_loses_no_accepted_message(platform, settings):
    settings.SWEEP_STUCK_AFTER_SECONDS = 0
    settings.PACING_BURST = 50
    ids = send_many(platform, 6)

    get_redis().flushall()  # every job is gone
    work()
    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"queued"}
    report = sweep()
    work_until(lambda: all_final(ids))

    assert report.messages_requeued == 6
    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) <= {"sent", "delivered", "read"}


@pytest.mark.timeout(120)
def test_a_killed_worker_loses_nothing_after_restart(platform, settings):
    """A worker SIGKILLed mid-send leaves messages `queued` (jobs lost with it) or
    `sending` (lease held by a dead process). The sweeper re-enqueues both once the
    lease ends; fresh workers finish them."""
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        database_url = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    elif connection.vendor == "sqlite" and not connection.is_in_memory_db():
        database_url = f"sqlite:///{db['NAME']}"
    else:
        pytest.skip("a worker subprocess must share the test database; an in-memory SQLite one cannot be shared")
    settings.SWEEP_STUCK_AFTER_SECONDS = 0
    settings.PACING_BURST = 100
    platform.sandbox.control("POST", "/sandbox/faults", json={"latency_ms": 300, "error_count": 0})
    ids = send_many(platform, 12)
    env = {**os.environ, "DATABASE_URL": database_url,
           "MESSAGE_SEND_LEASE_SECONDS": "1", "PACING_BURST": "100", "PACING_JITTER_SECONDS": "0",
           "PUBLIC_BASE_URL": settings.PUBLIC_BASE_URL}
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker_pool", platform.tenant.tier.send_queue, "--num-workers", "1"],
        cwd=REPO_ROOT, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: Message.objects.filter(pk__in=ids, status__in=["sent", "delivered", "read"]).exists(),
                   timeout=30, message="the worker to send something")
        wait_until(lambda: Message.objects.filter(pk__in=ids, status="sending").exists(), timeout=30, interval=0.01,
                   message="the worker to be caught mid-send")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
    unfinished = Message.objects.filter(pk__in=ids).exclude(status__in=FINAL).count()
    assert unfinished > 0

    platform.sandbox.control("DELETE", "/sandbox/faults")
    leased = Message.objects.filter(pk__in=ids, status="sending")
    wait_until(lambda: not leased.filter(lease_expires_at__gte=timezone.now()).exists(), timeout=10,
               message="the dead worker's leases to end")
    sweep()
    work_until(lambda: all_final(ids), timeout=40)

    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) <= {"sent", "delivered", "read"}


def test_transient_errors_retry_and_permanent_ones_fail_at_once(platform):
    platform.sandbox.control("POST", "/sandbox/faults", json={"error_status": 503, "error_count": 2})
    [retried] = send_many(platform, 1)
    message = work_until(lambda: (m := Message.objects.get(pk=retried)).status in FINAL and m)
    assert message.status in ("sent", "delivered", "read") and message.attempts == 3

    platform.sandbox.control("POST", "/sandbox/faults", json={"error_status": 400, "error_count": 1})
    [refused] = send_many(platform, 1, prefix="4915")
    message = work_until(lambda: (m := Message.objects.get(pk=refused)).status in FINAL and m)
    assert (message.status, message.attempts, message.error_code) == ("failed", 1, "400")
    assert message.error_reason
    body = platform.api.get(f"/api/v1/messages/{refused}").json()
    assert body["error"]["code"] == "400"


def test_a_paced_message_is_delayed_not_failed(platform, settings):
    settings.PACING_BURST = 1
    settings.PACING_INLINE_WAIT_SECONDS = 0.1
    platform.tenant.tier.messages_per_second = 2.0  # one every 0.5 s past the burst of one
    platform.tenant.tier.save()

    ids = send_many(platform, 3)
    work()
    paced = Message.objects.filter(pk__in=ids, status="queued", paced_until__isnull=False).count()
    work_until(lambda: all_final(ids))

    assert paced >= 1
    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) <= {"sent", "delivered", "read"}
    sent_at = sorted(Message.objects.filter(pk__in=ids).values_list("sent_at", flat=True))
    assert (sent_at[-1] - sent_at[0]).total_seconds() >= 0.9


def test_a_paced_message_run_early_keeps_its_booking_instead_of_booking_again(platform, settings):
    """rq's scheduler counts whole seconds, so a paced job can run before its booked time.
    Booking again on each early run pushed the send out every time: two paced messages
    then chased their own bookings forever (seen on CI)."""
    import django_rq

    from messaging.jobs import deliver_message

    settings.PACING_BURST = 1
    settings.PACING_INLINE_WAIT_SECONDS = 0.05
    platform.tenant.tier.messages_per_second = 0.5  # bookings 2 s and 4 s out
    platform.tenant.tier.save()
    ids = send_many(platform, 3)
    work()
    booked = dict(Message.objects.filter(pk__in=ids, paced_until__isnull=False).values_list("pk", "paced_until"))
    assert len(booked) == 2

    # when their jobs run early, again and again
    queue = django_rq.get_queue(platform.tenant.tier.send_queue)
    for _ in range(3):
        for message_id in booked:
            queue.enqueue(deliver_message, message_id)
        django_rq.get_worker(platform.tenant.tier.send_queue).work(burst=True)

    # then the bookings did not move: each message is still waiting for its own booked
    # time, or has been sent because that time came (a loaded machine runs the loop slowly)
    now = timezone.now()
    for pk, status, paced_until, sent_at in Message.objects.filter(pk__in=booked).values_list(
            "pk", "status", "paced_until", "sent_at"):
        if status == "queued":
            assert paced_until == booked[pk]
        else:
            assert sent_at >= booked[pk] - timedelta(seconds=1) and booked[pk] <= now
    assert Message.objects.filter(pk=max(booked), status="queued", paced_until=booked[max(booked)]).exists()
    work_until(lambda: all_final(ids))
    assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) <= {"sent", "delivered", "read"}
