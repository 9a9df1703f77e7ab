"""queue: raw rq no-op jobs/s against the full send pipeline, same worker class and count.

Workload. One `manage.py run_worker_pool low --num-workers W` (PlatformWorker,
as the Procfile runs it). Raw: N no-op jobs. Pipeline: N text messages of one
tenant, accepted by messaging.services.send_message (row `queued`, job on
`low` after commit), delivered by the workers through the sandbox bridge
(WAHA dialect over loopback) and recorded `sent`. In both cases the work is
preloaded while rq is suspended, then released; the rate is taken between the
first and last completion timestamps (rq's `ended_at`, the message's
`sent_at`), so worker start-up and the 1 s suspension poll are not counted.

Pacing is taken out, on purpose, because it has its own benchmark: the bench
tier sends at 1,000,000 msg/s (standard: 0.5/s), every message has its own
recipient (pair limit), and the workers run with PACING_JITTER_SECONDS=0. The
sandbox's delivery acks are deferred (--ack-delay 3600) so the figure is the
send path alone; acks and inbound are what `inbound` measures.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from bench.harness import Harness, bench_tier, make_tenant, register_sandbox_slot, start_working_sessions, wait_until

NAME = "queue"


def _ts(value: datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def rate(timestamps: list[float]) -> float:
    if len(timestamps) < 2:
        return float("nan")
    span = max(timestamps) - min(timestamps)
    return (len(timestamps) - 1) / span if span > 0 else float("nan")


def raw_rate(n: int) -> dict:
    from rq import Queue
    from rq.job import Job
    from rq.registry import FailedJobRegistry, FinishedJobRegistry
    from rq.suspension import resume, suspend

    from bench import jobs
    from waplatform.queues import get_queue

    q = get_queue("low")
    suspend(q.connection)
    q.enqueue_many([Queue.prepare_data(jobs.noop, result_ttl=3600) for _ in range(n)])
    released = time.time()
    resume(q.connection)
    finished, failed = FinishedJobRegistry(queue=q), FailedJobRegistry(queue=q)
    wait_until(lambda: finished.count + failed.count >= n, timeout=60 + n / 20, what=f"{n} no-op jobs")
    ended = [_ts(j.ended_at) for j in Job.fetch_many(finished.get_job_ids(), connection=q.connection) if j and j.ended_at]
    ended = [t for t in ended if t >= released]
    return {"jobs": n, "failed": failed.count, "jobs_per_s": rate(ended)}


def preload_messages(tenant, n: int, *, prefix: str = "4477") -> float:
    """send_message n times (distinct recipients); returns the accept rate in the driver, per second."""
    from messaging import services as messaging

    started = time.perf_counter()
    for i in range(n):
        messaging.send_message(tenant=tenant, to=f"{prefix}{i:08d}", type="text", text=f"bench message {i}")
    return n / (time.perf_counter() - started)


def sent_timestamps(tenant, since: float) -> tuple[list[float], int]:
    from messaging.models import Message

    rows = Message.objects.filter(tenant=tenant, direction="out")
    sent = [m.timestamp() for m in rows.filter(sent_at__isnull=False).values_list("sent_at", flat=True)]
    failed = rows.filter(status="failed").count()
    return [t for t in sent if t >= since], failed


def pipeline_rate(tenant, n: int) -> dict:
    from rq.suspension import resume, suspend

    from messaging.models import Message
    from waplatform.queues import get_queue

    connection = get_queue("low").connection
    suspend(connection)
    accept_rate = preload_messages(tenant, n)
    released = time.time()
    resume(connection)
    done = Message.objects.filter(tenant=tenant, direction="out", status__in=["sent", "delivered", "read", "failed"])
    wait_until(lambda: done.count() >= n, timeout=60 + n / 5, interval=0.1, what=f"{n} messages sent")
    sent, failed = sent_timestamps(tenant, released)
    return {"messages": n, "failed": failed, "messages_per_s": rate(sent), "accepted_per_s_in_driver": accept_rate}


def profile_pipeline(h: Harness, tenant, n: int) -> dict:
    """The same pipeline drained by a PlatformWorker in this process, under pyinstrument,
    with the database queries and Redis commands it issues counted per message."""
    import django_rq
    from django.conf import settings
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    from waplatform.redis import get_redis

    for proc in [p for p in h.procs if p.name == "workers-low"]:
        proc.stop()
        h.procs.remove(proc)
    settings.PACING_JITTER_SECONDS = 0.0
    preload_messages(tenant, n, prefix="4488")
    redis = get_redis()
    commands_before = redis.info("stats")["total_commands_processed"]
    worker = django_rq.get_worker("low")
    profiler = Profiler(interval=0.0005)
    with CaptureQueriesContext(connection) as queries:
        profiler.start()
        started = time.perf_counter()
        worker.work(burst=True, logging_level="WARNING")
        elapsed = time.perf_counter() - started
        profiler.stop()
    commands = redis.info("stats")["total_commands_processed"] - commands_before
    # The same count for rq's own share: n no-op jobs through the same worker class.
    from rq import Queue

    from bench import jobs

    q = worker.queues[0]
    q.enqueue_many([Queue.prepare_data(jobs.noop) for _ in range(n)])
    noop_before = redis.info("stats")["total_commands_processed"]
    django_rq.get_worker("low").work(burst=True, logging_level="WARNING")
    noop_commands = redis.info("stats")["total_commands_processed"] - noop_before
    statements: dict[str, int] = {}
    for q in queries.captured_queries:
        sql = q["sql"].split(" WHERE ")[0][:90]
        statements[sql] = statements.get(sql, 0) + 1
    out = h.out_dir / "profile-queue.txt"
    out.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    (h.out_dir / "profile-queue.html").write_text(profiler.output_html())
    top = sorted(statements.items(), key=lambda kv: -kv[1])[:12]
    return {
        "profiled_messages": n,
        "in_process_messages_per_s": n / elapsed,
        "db_queries_per_message": len(queries.captured_queries) / n,
        "redis_commands_per_message": commands / n,
        "redis_commands_per_noop_job": noop_commands / n,
        "top_statements_per_message": {sql: round(count / n, 2) for sql, count in top},
        "profile": str(out),
    }


def run(h: Harness, o) -> dict:
    n, workers = o.queue_messages, o.workers
    h.start_web()
    h.start_workers("maintenance", 1)
    h.start_workers("low", workers, env={"PACING_JITTER_SECONDS": "0"})
    sandbox = h.start_sandbox(capacity=2, ack_delay=3600)
    h.ready()
    tier = bench_tier("bench-queue", messages_per_second=1_000_000, send_queue="low")
    tenant, _ = make_tenant(tier, "bench queue")
    register_sandbox_slot(sandbox, tier=tier, capacity=2)
    start_working_sessions([tenant])

    raw = raw_rate(n)
    pipeline = pipeline_rate(tenant, n)
    figures = {"workers": workers, **{f"raw_{k}": v for k, v in raw.items()},
               **{f"pipeline_{k}": v for k, v in pipeline.items()}}
    result = {
        "figures": figures,
        "ratio": {"name": "pipeline / raw", "value": pipeline["messages_per_s"] / raw["jobs_per_s"]},
    }
    if o.profile:
        result["profile"] = profile_pipeline(h, tenant, o.profile_messages)
    return result
