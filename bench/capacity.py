"""capacity: tenants with WORKING sandbox sessions at growing sizes (default 500, 1,000,
2,000): memory, placement rate, one health-check cycle and one optimisation cycle.

Workload. The platform as the Procfile runs it: daphne, `maintenance` (2
workers), `low` (1 worker), the rq cron scheduler; sandbox workers of
--capacity-per-sandbox sessions each (default 250) registered as static slots
of a bench tier, added as the size grows. At each size the new tenants are
created (create_tenant), placed in batches of 500 (start_sessions: bulk
placement per slot, one start job per slot per 100 sessions), and
waited for until every session is WORKING (the sandbox scans after 0.1 s and
reports by signed webhook). Then:
- RSS and PSS (psutil; PSS counts pages a worker pool shares with its parent once), each process and its children) of the platform's processes
  and of the sandbox workers, separately; per tenant = (RSS - RSS before any
  tenant) / tenants;
- allocations/s: tenants placed (start_sessions) per second, and
  sessions reaching WORKING per second;
- one `run_health_checks` and one `optimize_pools` job on `maintenance`,
  timed by rq (started_at -> ended_at);
- the ceiling WORKING/s has on this machine: every session start is
  WEBHOOKS_PER_START signed webhooks (STARTING, SCAN_QR_CODE, WORKING; WAHA
  sends each as its own request), so one web process cannot bring sessions to
  WORKING faster than it answers a bare Django view (/bench/bare, the api
  benchmark's floor, measured here against the same daphne after the sizes)
  divided by that count.

Limits raised for the run: the bench tier holds --capacity-per-sandbox
tenants per slot and 1,000 slots (standard: 10 per slot, 20 slots), so 2,000
tenants fit on 8 sandbox processes instead of 200.
"""

from __future__ import annotations

import time

from bench.api import load
from bench.harness import Harness, bench_tier, make_tenant, register_sandbox_slot, start_working_sessions, wait_until

NAME = "capacity"
PLACE_BATCH = 500  # tenants per start_sessions call (one transaction; start jobs per slot)
WEBHOOKS_PER_START = 3  # the sandbox's, as WAHA's: session.status STARTING, SCAN_QR_CODE, WORKING
MB = 1024 * 1024


def timed_job(func, *, attempts: int = 60) -> float:
    """Run `func` as a job on `maintenance`; seconds from its start to its end, as the driver saw them.

    The pool's cycles are single-flight: while the scheduler's own run of the cycle holds the
    lock, ours returns at once with "skipped: ..." (which read as a 0.000 s health cycle at
    10,000 tenants). Such a run is not timed; the job is enqueued again."""
    for _ in range(attempts):
        seconds, result = _timed_once(func)
        skipped = isinstance(result, list) and any(str(line).startswith("skipped") for line in result)
        if not skipped:
            return seconds
        time.sleep(0.5)
    return float("nan")


def _timed_once(func) -> tuple[float, object]:
    from rq.job import JobStatus

    from waplatform.queues import get_queue

    job = get_queue("maintenance").enqueue(func, result_ttl=600, job_timeout=3600)
    started_at: list[float] = []
    finished_at: list[float] = []

    def finished() -> bool:
        job.refresh()
        status = job.get_status()
        if status != JobStatus.QUEUED and not started_at:
            started_at.append(time.perf_counter())
        if status in (JobStatus.FINISHED, JobStatus.FAILED):
            finished_at.append(time.perf_counter())
            return True
        return False

    wait_until(finished, timeout=3600, interval=0.02, what=f"{func.__name__} job")
    if job.get_status() != JobStatus.FINISHED:
        raise RuntimeError(f"{func.__name__} failed: {job.latest_result().exc_string if job.latest_result() else ''}")
    # rq 3 keeps no ended_at on the job; its start and the result's timestamp come from
    # different clocks' resolutions, so take the driver's wall time from start to finish.
    seconds = finished_at[0] - started_at[0] if started_at and finished_at else float("nan")
    return seconds, job.return_value()


def run(h: Harness, o) -> dict:
    from pooling import jobs as pooling_jobs
    from pooling import services as pooling

    sizes = sorted(int(x) for x in str(o.capacity_sizes).split(","))
    per = o.capacity_per_sandbox
    h.start_web(env={"BENCH_BARE_VIEW": "true"})
    h.start_workers("maintenance", 2)
    h.start_workers("low", 1)
    h.start_scheduler()
    h.ready()
    tier = bench_tier("bench-capacity", tenants_per_slot=per, max_slots=1000)
    time.sleep(1.0)
    base_platform = h.rss("platform")
    base_platform_pss = h.pss("platform")
    sandboxes = []
    rows = []
    created = 0
    for size in sizes:
        while len(sandboxes) * per < size:
            sandbox = h.start_sandbox(capacity=per)
            register_sandbox_slot(sandbox, tier=tier, capacity=per)
            sandboxes.append(sandbox)
        new = [make_tenant(tier, f"bench capacity {i}")[0] for i in range(created, size)]
        created = size
        t0 = time.perf_counter()
        for i in range(0, len(new), PLACE_BATCH):
            pooling.start_sessions(tenants=new[i:i + PLACE_BATCH])
        placing = time.perf_counter() - t0
        from pooling.models import WhatsAppSession

        wait_until(lambda: WhatsAppSession.objects.filter(status="WORKING").count() >= size,
                   timeout=120 + size * 0.5, interval=0.25, what=f"{size} sessions WORKING")
        working = time.perf_counter() - t0
        platform_rss, sandbox_rss = h.rss("platform"), h.rss("sandbox")
        platform_pss, sandbox_pss = h.pss("platform"), h.pss("sandbox")
        health = timed_job(pooling_jobs.run_health_checks)
        optimise = timed_job(pooling_jobs.optimize_pools)
        rows.append({
            "tenants": size, "sandboxes": len(sandboxes),
            "platform_rss_mb": platform_rss / MB, "sandbox_rss_mb": sandbox_rss / MB,
            "platform_pss_mb": platform_pss / MB, "sandbox_pss_mb": sandbox_pss / MB,
            "platform_kb_per_tenant": (platform_rss - base_platform) / size / 1024,
            "sandbox_kb_per_tenant": sandbox_rss / size / 1024,
            "allocations_per_s": len(new) / placing, "working_per_s": len(new) / working,
            "health_cycle_s": health, "optimise_cycle_s": optimise,
            "processes_mb": {k: round(v / MB, 1) for k, v in h.rss_by_process().items()},
        })
    bare = load([h.web_url], method="GET", path="/bench/bare", token="-", body=None,
                concurrency=o.api_concurrency, seconds=o.api_seconds)["requests_per_s"]
    ceiling = bare / WEBHOOKS_PER_START
    figures: dict = {"platform_rss_before_tenants_mb": base_platform / MB,
                     "platform_pss_before_tenants_mb": base_platform_pss / MB,
                     "bare_view_requests_per_s": bare, "working_ceiling_per_s": ceiling}
    for row in rows:
        n = row["tenants"]
        for key, value in row.items():
            if key not in ("tenants",):
                figures[f"n{n}_{key}"] = value
        figures[f"n{n}_working_of_ceiling"] = row["working_per_s"] / ceiling
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        grow = (last["tenants"] / first["tenants"])
        figures["growth_tenants_x"] = grow
        figures["growth_health_cycle_x"] = last["health_cycle_s"] / first["health_cycle_s"]
        figures["growth_optimise_cycle_x"] = last["optimise_cycle_s"] / first["optimise_cycle_s"]
        figures["growth_platform_rss_x"] = last["platform_rss_mb"] / first["platform_rss_mb"]
        figures["growth_sandbox_rss_x"] = last["sandbox_rss_mb"] / first["sandbox_rss_mb"]
        figures["marginal_sandbox_kb_per_tenant"] = (
            (last["sandbox_rss_mb"] - first["sandbox_rss_mb"]) * 1024 / (last["tenants"] - first["tenants"]))
        figures["marginal_health_ms_per_tenant"] = (
            (last["health_cycle_s"] - first["health_cycle_s"]) * 1000 / (last["tenants"] - first["tenants"]))
    last = rows[-1]
    return {"figures": figures, "rows": rows,
            "ratio": {"name": f"health cycle / 30 s interval at {last['tenants']} tenants",
                      "value": last["health_cycle_s"] / 30.0}}
