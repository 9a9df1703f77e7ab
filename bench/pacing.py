"""pacing: a Cloud API tenant sends N messages (default 2,000); achieved rate against
CLOUD_MESSAGES_PER_SECOND (80/s, Meta's default).

Workload. daphne, one `maintenance` worker, W `low` workers, one sandbox
worker. The tenant's session is a Cloud API number (phone_number_id) placed
on the sandbox slot; the Cloud adapter registers it with the sandbox's Cloud
dialect (POST /sandbox/cloud/numbers) and sends through its Graph endpoint.
N messages to N distinct recipients (so the per-recipient pair limit never
binds; the per-number bucket is the subject) are preloaded through
send_message while rq is suspended, then released. Achieved rate = (sent - 1)
/ (last sent_at - first sent_at); also the most sends seen in any 1-second
window, which may not exceed the rate plus PACING_BURST. Status webhooks are
deferred (--ack-delay 3600) so the send path alone is measured.
"""

from __future__ import annotations

import time

from bench.harness import Harness, bench_tier, make_tenant, register_sandbox_slot, start_working_sessions, wait_until
from bench.queue import preload_messages, rate, sent_timestamps

NAME = "pacing"
PHONE_NUMBER_ID = "100000000000001"


def max_in_window(timestamps: list[float], window: float = 1.0) -> int:
    ordered, best, left = sorted(timestamps), 0, 0
    for right, t in enumerate(ordered):
        while t - ordered[left] >= window:
            left += 1
        best = max(best, right - left + 1)
    return best


def pacer_schedule(n: int) -> list[float]:
    """The pacer without the pipeline: n reservations on a fresh number key as fast as the
    driver can ask; returns the send times it booked (now + wait)."""
    from messaging.pacing import reserve_send

    booked = []
    for i in range(n):
        pace = reserve_send(number_key="bench:pacer-alone", recipient=f"r{i}", dialect="cloud", tier_rate=0)
        booked.append(time.time() + pace.wait_seconds)
    return booked


def run(h: Harness, o) -> dict:
    from django.conf import settings
    from rq.suspension import resume, suspend

    from messaging.models import Message
    from waplatform.queues import get_queue

    n, workers = o.pacing_messages, o.pacing_workers
    h.start_web()
    h.start_workers("maintenance", 1)
    h.start_workers("low", workers)
    sandbox = h.start_sandbox(capacity=2, ack_delay=3600)
    h.ready()
    tier = bench_tier("bench-pacing", send_queue="low")
    tenant, _ = make_tenant(tier, "bench pacing")
    register_sandbox_slot(sandbox, tier=tier, capacity=2)
    start_working_sessions([tenant], phone_number_ids={tenant.pk: PHONE_NUMBER_ID})

    connection = get_queue("low").connection
    suspend(connection)
    accept_rate = preload_messages(tenant, n, prefix="4478")
    released = time.time()
    resume(connection)
    done = Message.objects.filter(tenant=tenant, direction="out", status__in=["sent", "delivered", "read", "failed"])
    wait_until(lambda: done.count() >= n, timeout=120 + n / 20, interval=0.2, what=f"{n} Cloud messages sent")
    sent, failed = sent_timestamps(tenant, released)
    limit = settings.CLOUD_MESSAGES_PER_SECOND
    booked = pacer_schedule(n)
    achieved = rate(sent)
    window = max_in_window(sent)
    return {
        "figures": {
            "messages": n, "workers": workers, "failed": failed, "limit_per_s": limit,
            "burst": settings.CLOUD_PACING_BURST, "achieved_per_s": achieved, "max_sends_in_any_1s": window,
            "exceeded_limit": window > limit + settings.CLOUD_PACING_BURST,
            "accepted_per_s_in_driver": accept_rate,
            "pacer_alone_booked_per_s": rate(booked),
            "pacer_alone_max_in_any_1s": max_in_window(booked),
        },
        "ratio": {"name": "achieved / limit", "value": achieved / limit},
    }
