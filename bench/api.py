"""api: POST /api/v1/messages and GET /api/v1/tenant req/s, against a bare Django view, on 1 and 2 web processes.

Workload. Two daphne processes (as the launcher's `web` role runs
WEB_PROCESSES of them, on consecutive ports), started with BENCH_BARE_VIEW so
/bench/bare (waplatform/bench_view.py: a JsonResponse, same middleware) is
routed. The load comes from two load generators in processes of their own
(bench/loadgen.py: httpx.AsyncClient, C/2 keep-alive connections each,
closed loop, T seconds after 0.5 s warm-up): for "1 process" both aim at the
first daphne, for "2 processes" one at each, so the generators' own CPU is
the same in both and only the spread differs (no nginx: the load is spread
by port, as WEB_UPSTREAMS would list them; nginx would add its own CPU to a
2-core machine). Endpoints: GET /bench/bare (the floor), GET /api/v1/tenant
(authenticated by API key, throttled, serialised: the cheapest real
endpoint), POST /api/v1/messages (a text message to one recipient:
validation, throttle, send_message's transaction and the events it
publishes). Each round runs bare, GET, GET on 2, POST, POST on 2, so drift on
a shared machine hits all; rates are means over rounds.

Ratios: POST / GET (1 process), GET / bare (1 process), and 2 processes /
1 process for GET and for POST.

Limits raised for the run: the bench tier's api_rate_limit_per_minute is
10,000,000 (standard: 120) and QUEUE_MAX_WAITING 10,000,000, since no worker
drains the `low` queue here (the send path is `queue`'s subject).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import time

from bench.harness import BASE_DIR, Harness, bench_tier, make_tenant, register_sandbox_slot
from waplatform.embedded_redis import free_port

NAME = "api"


def load(urls: list[str], *, method: str, path: str, token: str, body: dict | None, concurrency: int,
         seconds: float) -> dict:
    """One load generator per entry of `urls`, C/len(urls) connections each, at once; their figures summed."""
    share = max(1, concurrency // len(urls))
    procs = []
    for url in urls:
        args = [sys.executable, "-m", "bench.loadgen", url + path, "--method", method, "--token", token,
                "--concurrency", str(share), "--seconds", str(seconds)]
        if body is not None:
            args += ["--json", json.dumps(body)]
        procs.append(subprocess.Popen(args, cwd=BASE_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    runs = []
    for proc in procs:
        out, err = proc.communicate(timeout=seconds + 120)
        if proc.returncode != 0:
            raise RuntimeError(f"bench.loadgen exited {proc.returncode}: {err[-2000:]}")
        runs.append(json.loads(out.strip().splitlines()[-1]))
    statuses: dict[str, int] = {}
    for r in runs:
        for code, n in r["statuses"].items():
            statuses[str(code)] = statuses.get(str(code), 0) + n
    # A generator whose one request outlasted a short (--tiny) window counted none: no latency of its own.
    timed = [r for r in runs if r["requests"]] or runs
    return {"requests_per_s": sum(r["requests_per_s"] for r in runs), "errors": sum(r["errors"] for r in runs),
            "statuses": statuses,
            "p50_ms": sum(r["p50_ms"] for r in timed) / len(timed), "p99_ms": max(r["p99_ms"] for r in timed)}


def profile_requests(h: Harness, token: str, body: dict, n: int) -> dict:
    """--profile: each endpoint `n` times in this process (Django's test client, no daphne) under
    pyinstrument, with its SQL statements counted; bench/profile-api-<name>.txt and .html."""
    from django.db import connection
    from django.test import Client
    from pyinstrument import Profiler

    from django.conf import settings
    from django.urls import clear_url_caches

    settings.BENCH_BARE_VIEW = True  # the driver's own URLconf routes /bench/bare too
    if "waplatform.urls" in sys.modules:
        importlib.reload(sys.modules["waplatform.urls"])
    clear_url_caches()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    calls = {"bare": lambda: client.get("/bench/bare"), "get": lambda: client.get("/api/v1/tenant"),
             "post": lambda: client.post("/api/v1/messages", body, content_type="application/json")}
    out: dict = {"profiled_requests": n}
    for name, call in calls.items():
        call()  # warm: imports, the key cache, the conversation
        statements = []
        # Not CaptureQueriesContext: request_started empties the connection's query log under it.
        with connection.execute_wrapper(lambda execute, sql, *a: statements.append(sql) or execute(sql, *a)):
            call()
        profiler = Profiler(interval=0.0005)
        profiler.start()
        started = time.perf_counter()
        for _ in range(n):
            call()
        elapsed = time.perf_counter() - started
        profiler.stop()
        (h.out_dir / f"profile-api-{name}.txt").write_text(profiler.output_text(unicode=True, color=False))
        (h.out_dir / f"profile-api-{name}.html").write_text(profiler.output_html())
        out[f"{name}_ms_per_request_profiled"] = elapsed / n * 1000
        out[f"{name}_sql_statements"] = len(statements)
    return out


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def run(h: Harness, o) -> dict:
    from pooling import services as pooling

    env = {"BENCH_BARE_VIEW": "true"}
    first = h.start_web(env=env).extra["base_url"]
    second = h.start_web(env=env, port=free_port()).extra["base_url"]
    sandbox = h.start_sandbox(capacity=2)
    h.ready()
    tier = bench_tier("bench-api", api_rate_limit_per_minute=10_000_000, send_queue="low")
    tenant, token = make_tenant(tier, "bench api")
    register_sandbox_slot(sandbox, tier=tier, capacity=2)
    pooling.start_session(tenant=tenant)  # a wanted session is all an accept needs

    body = {"to": "447700900123", "type": "text", "text": {"body": "bench api message"}}
    one, two = [first, first], [first, second]
    rounds: dict[str, list[dict]] = {name: [] for name in ("bare", "get", "get_2", "post", "post_2")}
    common = {"token": token, "concurrency": o.api_concurrency, "seconds": o.api_seconds}
    for _ in range(o.api_rounds):
        rounds["bare"].append(load(one, method="GET", path="/bench/bare", body=None, **common))
        rounds["get"].append(load(one, method="GET", path="/api/v1/tenant", body=None, **common))
        rounds["get_2"].append(load(two, method="GET", path="/api/v1/tenant", body=None, **common))
        rounds["post"].append(load(one, method="POST", path="/api/v1/messages", body=body, **common))
        rounds["post_2"].append(load(two, method="POST", path="/api/v1/messages", body=body, **common))

    def mean(name: str, key: str) -> float:
        return sum(r[key] for r in rounds[name]) / len(rounds[name])

    labels = {"bare": "bare_view", "get": "get_tenant", "get_2": "get_tenant_2_processes",
              "post": "post_messages", "post_2": "post_messages_2_processes"}
    figures: dict = {"concurrency": o.api_concurrency, "seconds_per_round": o.api_seconds, "rounds": o.api_rounds}
    for name, label in labels.items():
        figures[f"{label}_requests_per_s"] = mean(name, "requests_per_s")
        figures[f"{label}_p50_ms"] = mean(name, "p50_ms")
        figures[f"{label}_p99_ms"] = mean(name, "p99_ms")
        figures[f"{label}_errors"] = sum(r["errors"] for r in rounds[name])
    figures["post_statuses"] = [r["statuses"] for r in rounds["post"] + rounds["post_2"]]
    rps = {name: mean(name, "requests_per_s") for name in rounds}
    ratios = [
        {"name": "POST messages / GET tenant", "value": ratio(rps["post"], rps["get"])},
        {"name": "GET tenant / bare view", "value": ratio(rps["get"], rps["bare"])},
        {"name": "GET tenant, 2 web processes / 1", "value": ratio(rps["get_2"], rps["get"])},
        {"name": "POST messages, 2 web processes / 1", "value": ratio(rps["post_2"], rps["post"])},
    ]
    result = {"figures": figures, "ratio": ratios[0], "ratios": ratios[1:]}
    if o.profile:
        result["profile"] = profile_requests(h, token, body, o.profile_messages)
    return result
