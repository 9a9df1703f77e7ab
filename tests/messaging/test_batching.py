"""Batched sends (docs/messaging.md "Batched sends"): a tenant's burst is one job per lane, each
recipient's messages sent in order, and a tenant with a backlog takes turns with the others of its queue."""

import os
import subprocess
import sys
import time

from datetime import timedelta

import django_rq
import pytest
from django.utils import timezone

from messaging.models import Message
from pooling.models import WhatsAppSession
from messaging.services.batches import _lane_held, batch_flag, deliver_batch, lane_lock_key, send_lane
from tests.factories import TenantFactory
from tests.messaging.conftest import start_working_session, work, work_until
from tests.messaging.test_durability import all_final, send_many
from waplatform import lease_owners
from waplatform.redis import get_redis

pytestmark = pytest.mark.integration

SENT = {"sent", "delivered", "read"}


def test_a_burst_of_sends_waits_as_one_job_per_lane_and_goes_out_in_order(platform, settings):
    settings.PACING_BURST = 100
    ids = send_many(platform, 25)

    # What an operator sees on the queue page: one job for each lane of the tenant's sends, not 25.
    lanes = {send_lane(contact_id) for contact_id in Message.objects.filter(pk__in=ids).values_list("contact_id", flat=True)}
    assert len(lanes) == settings.SEND_BATCH_LANES == 2
    assert django_rq.get_queue(platform.tenant.tier.send_queue).count == 2
    work_until(lambda: all_final(ids))

    rows = list(Message.objects.filter(pk__in=ids).order_by("pk").values_list("status", "attempts", "sent_at", "contact_id"))
    assert {status for status, _, _, _ in rows} <= SENT
    assert {attempts for _, attempts, _, _ in rows} == {1}
    for lane in lanes:  # accepted order is the order they reached the bridge, lane by lane
        sent_at = [sent for _, _, sent, contact_id in rows if send_lane(contact_id) == lane]
        assert sent_at == sorted(sent_at)


def test_a_recipient_takes_one_lane_a_lane_being_sent_is_left_to_its_sender_and_a_dead_senders_is_taken_over(
        platform, settings):
    settings.PACING_BURST = 100
    ids = [*send_many(platform, 1), *send_many(platform, 1), *send_many(platform, 1)]  # one recipient, three messages
    [contact_id] = set(Message.objects.filter(pk__in=ids).values_list("contact_id", flat=True))
    lane = send_lane(contact_id)
    assert django_rq.get_queue(platform.tenant.tier.send_queue).count == 1

    # While one job sends the lane, a second one for it sends nothing: two senders of one
    # recipient's messages could put them on the bridge out of order.
    with _lane_held(platform.tenant.pk, lane) as held:  # this process, alive: a sender mid-turn
        assert held
        assert deliver_batch(tenant_id=platform.tenant.pk, lane=lane) == "lane busy"
        assert set(Message.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"queued"}

    # A sender killed mid-turn leaves its lock; the next job sees its holder is gone and takes the lane.
    dead = f"{lease_owners.HOST}|{2**22 + 7}|1.00|gone-worker@{time.time():.3f}"
    get_redis().set(lane_lock_key(platform.tenant.pk, lane), dead, px=90_000)
    assert deliver_batch(tenant_id=platform.tenant.pk, lane=lane).startswith("sent 3")
    sent_at = list(Message.objects.filter(pk__in=ids).order_by("pk").values_list("sent_at", flat=True))
    assert sent_at == sorted(sent_at) and None not in sent_at
    assert get_redis().get(lane_lock_key(platform.tenant.pk, lane)) is None  # let go after its turn


def test_a_lane_whose_session_is_not_ready_waits_for_its_delayed_job_instead_of_coming_straight_back(platform):
    # A worker died mid-send (its row `sending`, lease over) and the session is not WORKING now.
    first, second = send_many(platform, 1)[0], send_many(platform, 1)[0]  # one recipient: one lane
    queue = django_rq.get_queue(platform.tenant.tier.send_queue)
    queue.empty()
    Message.objects.filter(pk=first).update(status="sending", status_rank=Message.RANK["sending"],
                                            lease_expires_at=timezone.now() - timedelta(seconds=1))
    WhatsAppSession.objects.filter(pk=platform.session.pk).update(status="STARTING")
    lane = send_lane(Message.objects.get(pk=first).contact_id)

    outcome = deliver_batch(tenant_id=platform.tenant.pk, lane=lane)

    # The queued message waits for the session; the lease-expired one must not bring the
    # job straight back (it would spin on the queue until the session is up).
    assert outcome.startswith("waiting")
    assert Message.objects.get(pk=second).next_attempt_at > timezone.now()
    assert queue.count == 0
    assert len(queue.scheduled_job_registry.get_job_ids()) == 1


def test_sending_lanes_must_be_at_least_one():
    result = subprocess.run([sys.executable, "-c", "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = "
                             "'waplatform.settings'; django.setup()"],
                            env={**os.environ, "SEND_BATCH_LANES": "0"}, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "SEND_BATCH_LANES must be 1 or more" in result.stderr


def test_a_tenant_with_a_backlog_takes_turns_with_the_others_of_its_queue(platform, settings):
    settings.PACING_BURST = 100
    settings.SEND_BATCH_SIZE = 2
    settings.SEND_BATCH_SECONDS = 0  # one claim per job, then back of the queue
    other = start_working_session(TenantFactory(tier=platform.tenant.tier), platform.sandbox)
    backlog = send_many(platform, 6)
    [late] = send_many(other, 1, prefix="1650777")

    work()
    work_until(lambda: all_final([*backlog, late]))

    assert set(Message.objects.filter(pk__in=[*backlog, late]).values_list("status", flat=True)) <= SENT
    late_sent = Message.objects.get(pk=late).sent_at
    last_of_backlog = max(Message.objects.filter(pk__in=backlog).values_list("sent_at", flat=True))
    assert late_sent < last_of_backlog


def test_a_batch_flag_left_without_its_job_does_not_hold_sends_back(platform, settings):
    # A Redis restarted from its append-only file can keep the "a batch job is waiting" flag
    # and lose the job it stood for (or keep the flag and lose the job's DEL of it).
    settings.SEND_BATCH_FLAG_SECONDS = 3600  # the flag's expiry cannot be what lets the send go
    for lane in range(settings.SEND_BATCH_LANES):
        get_redis().set(batch_flag(platform.tenant.pk, lane), "a-job-that-is-gone", px=3_600_000)

    [message_id] = send_many(platform, 1)

    assert django_rq.get_queue(platform.tenant.tier.send_queue).count == 1
    work_until(lambda: all_final([message_id]))
    assert Message.objects.get(pk=message_id).status in SENT


def test_a_batch_flag_whose_job_says_queued_but_is_on_no_queue_does_not_hold_sends_back(platform, settings):
    # The job's hash survived a Redis restart but its place on the queue did not (the
    # append-only file's last second, or a worker's dequeue cut off by the outage): rq
    # would never run it, and the flag naming it must not make later sends wait for it.
    settings.SEND_BATCH_FLAG_SECONDS = 3600
    queue = django_rq.get_queue(platform.tenant.tier.send_queue)
    [first] = send_many(platform, 1)
    [stranded] = queue.get_job_ids()
    get_redis().lrem(queue.key, 0, stranded)
    assert queue.fetch_job(stranded).get_status() == "queued"

    [second] = send_many(platform, 1)

    assert queue.get_job_ids() not in ([], [stranded])
    work_until(lambda: all_final([first, second]))
    assert set(Message.objects.filter(pk__in=[first, second]).values_list("status", flat=True)) <= SENT
