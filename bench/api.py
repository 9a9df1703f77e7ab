"""api: requests/s for POST /api/v1/messages against GET /api/v1/tenant, same daphne.

Workload. One daphne process (as the Procfile runs it). A load generator in
its own process (bench/loadgen.py: httpx.AsyncClient, C keep-alive
connections, closed loop, T seconds after 0.5 s warm-up) calls, in turn,
GET /api/v1/tenant (authenticated by API key, throttled, serialised: the
cheapest real endpoint) and POST /api/v1/messages (a text message to one
recipient: validation, throttle, send_message's transaction and the events it
publishes). Rounds alternate GET, POST, GET, POST... so drift on a shared
machine hits both; the ratio is mean POST rate / mean GET rate.

Limits raised for the run: the bench tier's api_rate_limit_per_minute is
10,000,000 (standard: 120) and QUEUE_MAX_WAITING 10,000,000, since no worker
drains the `low` queue here (the send path is `queue`'s subject).
"""

from __future__ import annotations

import json
import subprocess
import sys

from bench.harness import BASE_DIR, Harness, bench_tier, make_tenant, register_sandbox_slot

NAME = "api"


def load(h: Harness, *, method: str, path: str, token: str, body: dict | None, concurrency: int, seconds: float) -> dict:
    args = [sys.executable, "-m", "bench.loadgen", h.web_url + path, "--method", method, "--token", token,
            "--concurrency", str(concurrency), "--seconds", str(seconds)]
    if body is not None:
        args += ["--json", json.dumps(body)]
    out = subprocess.run(args, cwd=BASE_DIR, capture_output=True, text=True, timeout=seconds + 120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run(h: Harness, o) -> dict:
    from pooling import services as pooling

    h.start_web()
    sandbox = h.start_sandbox(capacity=2)
    h.ready()
    tier = bench_tier("bench-api", api_rate_limit_per_minute=10_000_000, send_queue="low")
    tenant, token = make_tenant(tier, "bench api")
    register_sandbox_slot(sandbox, tier=tier, capacity=2)
    pooling.start_session(tenant=tenant)  # a wanted session is all an accept needs

    body = {"to": "447700900123", "type": "text", "text": {"body": "bench api message"}}
    gets, posts = [], []
    for _ in range(o.api_rounds):
        gets.append(load(h, method="GET", path="/api/v1/tenant", token=token, body=None,
                         concurrency=o.api_concurrency, seconds=o.api_seconds))
        posts.append(load(h, method="POST", path="/api/v1/messages", token=token, body=body,
                          concurrency=o.api_concurrency, seconds=o.api_seconds))

    def mean(runs: list[dict], key: str) -> float:
        return sum(r[key] for r in runs) / len(runs)

    get_rps, post_rps = mean(gets, "requests_per_s"), mean(posts, "requests_per_s")
    return {
        "figures": {
            "concurrency": o.api_concurrency, "seconds_per_round": o.api_seconds, "rounds": o.api_rounds,
            "get_tenant_requests_per_s": get_rps, "get_tenant_p50_ms": mean(gets, "p50_ms"),
            "get_tenant_p99_ms": mean(gets, "p99_ms"), "get_tenant_errors": sum(r["errors"] for r in gets),
            "post_messages_requests_per_s": post_rps, "post_messages_p50_ms": mean(posts, "p50_ms"),
            "post_messages_p99_ms": mean(posts, "p99_ms"), "post_messages_errors": sum(r["errors"] for r in posts),
            "post_statuses": [r["statuses"] for r in posts],
        },
        "ratio": {"name": "POST messages / GET tenant", "value": post_rps / get_rps if get_rps else float("nan")},
    }
