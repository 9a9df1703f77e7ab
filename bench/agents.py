"""agents: inbound message -> knowledge-base reply `sent`, p50/p95 at 1, 10, 50 and 100
conversations in parallel.

Workload. daphne, one `maintenance`, W `ai` and W `low` workers, one sandbox
worker with the tenant's WORKING session. The tenant's default agent is a
knowledge-base agent with 20 entries. Each round, C new contacts each send
one question at the same moment (POST /sandbox/inbound); latency is from that
POST to the reply's `sent_at`, and per hop (webhook -> ingest -> event -> `ai` job ->
BM25 answer -> send_message -> `low` job -> bridge -> `sent`). Rounds per
level: --agents-rounds. Ratio: p50 at the highest parallelism / p50 at 1.

Where the CPU goes: per level, each process's CPU per reply (`cN_cpu_ms_per_reply`,
the bench process and Redis included) and their sum. The floor: a bare Django view's
CPU on the same daphne times the four webhooks a reply brings (the message, three
acks) plus the sandbox's own CPU (it plays WhatsApp); `cN_floor_all_sent_ms` is the
least time this machine's cores need for N replies at that floor, and
`cN_cpu_over_floor` how far above it the platform is.

Set for the run: AGENTS_DEBOUNCE_SECONDS=0 (the 2 s debounce is a deliberate
wait, not work) and the bench tier sends at 1,000 msg/s (standard: 0.5/s per
number, under which 50 replies alone need 100 s). Pacing jitter is left on.
"""

from __future__ import annotations

import time

import httpx

from bench.harness import (SANDBOX_KEY, Harness, bench_tier, make_tenant, percentile, register_sandbox_slot,
                           start_working_sessions, wait_until)

NAME = "agents"
ENV = {"AGENTS_DEBOUNCE_SECONDS": "0"}
TOPICS = ["opening hours", "delivery times", "return policy", "payment methods", "gift cards", "store locations",
          "warranty", "shipping costs", "order tracking", "account password", "loyalty points", "student discount",
          "bulk orders", "invoice copy", "size guide", "international shipping", "pre-orders", "price match",
          "repairs", "newsletter"]


def missing_dependency() -> str | None:
    from django.conf import settings

    from waplatform.events import subscribers

    if "agents" not in settings.INSTALLED_APPS or "agents" not in subscribers():
        return "needs the agents app (INSTALLED_APPS, with its event subscriber registered)"
    try:
        from agents import services

        services.create_agent, services.create_knowledge_entry, services.respond  # noqa: B018
    except (ImportError, AttributeError) as exc:
        return f"needs agents.services ({exc})"
    return None


def setup_agent(tenant) -> None:
    from agents import services
    from agents.models import Agent

    agent = services.create_agent(tenant=tenant, name="FAQ", kind=Agent.Kind.KNOWLEDGE_BASE, is_default=True)
    for topic in TOPICS:
        services.create_knowledge_entry(agent=agent, question=f"What about your {topic}?",
                                        answer=f"Here is everything about our {topic}.")


HOPS = ("intake", "respond", "send")


def one_round(tenant, client: httpx.Client, base_url: str, session_name: str, senders: list[str]) -> list[dict | None]:
    """Per sender: total ms from the POST to the reply's `sent_at`, and the three hops on the way:
    intake (POST -> inbound row stored), respond (stored -> reply accepted), send (accepted -> sent)."""
    from messaging.models import Message

    posted: dict[str, float] = {}
    for i, sender in enumerate(senders):
        posted[sender] = time.time()
        client.post(base_url + "/sandbox/inbound",
                    json={"session": session_name, "from": sender, "text": f"what about your {TOPICS[i % 20]}?",
                          "name": f"Bench {i}"}, headers={"X-Api-Key": SANDBOX_KEY}).raise_for_status()
    replies = Message.objects.filter(tenant=tenant, direction="out", contact__wa_id__in=senders, sent_at__isnull=False)

    def all_sent() -> bool:
        return replies.values("contact_id").distinct().count() >= len(senders)

    try:
        wait_until(all_sent, timeout=60 + 2 * len(senders), interval=0.05, what="replies")
    except TimeoutError:
        pass
    first: dict[str, tuple[float, float]] = {}
    for wa_id, accepted_at, sent_at in replies.order_by("sent_at").values_list("contact__wa_id", "accepted_at",
                                                                               "sent_at"):
        first.setdefault(wa_id, (accepted_at.timestamp(), sent_at.timestamp()))
    stored = dict(Message.objects.filter(tenant=tenant, direction="in", contact__wa_id__in=senders)
                  .order_by("-pk").values_list("contact__wa_id", "accepted_at"))
    out: list[dict | None] = []
    for s in senders:
        if s not in first or s not in stored:
            out.append(None)
            continue
        accepted, sent = first[s]
        t_in = stored[s].timestamp()
        out.append({"total": (sent - posted[s]) * 1000, "intake": (t_in - posted[s]) * 1000,
                    "respond": (accepted - t_in) * 1000, "send": (sent - accepted) * 1000})
    return out


def profile_respond(h: Harness, tenant, client: httpx.Client, base_url: str, session_name: str, n: int) -> dict:
    """The `ai` hop in this process under pyinstrument: n inbound messages stored with no `ai`
    worker running, then their respond jobs drained by a PlatformWorker here, queries counted."""
    import django_rq
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from pyinstrument import Profiler

    from messaging.models import Message
    from waplatform.queues import get_queue

    for proc in [p for p in h.procs if p.name == "workers-ai"]:
        proc.stop()
        h.procs.remove(proc)
    senders = [f"4478{i:06d}" for i in range(n)]
    for i, sender in enumerate(senders):
        client.post(base_url + "/sandbox/inbound",
                    json={"session": session_name, "from": sender, "text": f"what about your {TOPICS[i % 20]}?",
                          "name": f"Profile {i}"}, headers={"X-Api-Key": SANDBOX_KEY}).raise_for_status()
    queue = get_queue("ai")
    wait_until(lambda: queue.count >= n, timeout=60 + n, what=f"{n} respond jobs queued")
    worker = django_rq.get_worker("ai")
    profiler = Profiler(interval=0.0005)
    with CaptureQueriesContext(connection) as queries:
        profiler.start()
        started = time.perf_counter()
        worker.work(burst=True, logging_level="WARNING")
        elapsed = time.perf_counter() - started
        profiler.stop()
    answered = Message.objects.filter(tenant=tenant, direction="out", contact__wa_id__in=senders).count()
    statements: dict[str, int] = {}
    for q in queries.captured_queries:
        sql = q["sql"].split(" WHERE ")[0][:90]
        statements[sql] = statements.get(sql, 0) + 1
    out = h.out_dir / "profile-agents.txt"
    out.write_text(profiler.output_text(unicode=True, color=False, show_all=False))
    top = sorted(statements.items(), key=lambda kv: -kv[1])[:12]
    return {"profiled_replies": answered, "in_process_respond_ms": elapsed * 1000 / max(1, n),
            "db_queries_per_reply": len(queries.captured_queries) / max(1, n),
            "top_statements_per_message": {sql: round(count / n, 2) for sql, count in top}, "profile": str(out)}


# Webhooks the web process takes per reply: the contact's message, then the bridge's three acks
# (sent, delivered, read) for the reply, as WAHA and the Cloud API send them.
WEBHOOKS_PER_REPLY = 4


def floor(h: Harness, client: httpx.Client, figures: dict, *, high: int, requests: int = 300) -> dict:
    """The least CPU a reply can cost here whatever the platform does: the web process answering
    its WEBHOOKS_PER_REPLY requests as a bare Django view (/bench/bare, CPU measured on the same
    daphne), plus the sandbox's own CPU per reply (it plays WhatsApp: outside the platform).
    Spread over every core, `high` replies cannot all be sent sooner than that floor allows."""
    import os

    daphne = next(proc for proc in h.procs if proc.name == "daphne")
    before = daphne.cpu_seconds()
    for _ in range(requests):
        client.get(h.web_url + "/bench/bare").raise_for_status()
    bare_ms = (daphne.cpu_seconds() - before) * 1000 / requests
    by_process = figures.get(f"c{high}_cpu_ms_per_reply") or {}
    sandbox_ms = sum(ms for name, ms in by_process.items() if name.startswith("sandbox"))
    floor_ms = WEBHOOKS_PER_REPLY * bare_ms + sandbox_ms
    cores = os.cpu_count() or 1
    return {"bare_request_cpu_ms": round(bare_ms, 2),
            "floor_cpu_ms_per_reply": round(floor_ms, 1),
            f"c{high}_floor_all_sent_ms": round(high * floor_ms / cores),
            f"c{high}_cpu_over_floor": round(figures.get(f"c{high}_cpu_ms_per_reply_all", 0) / floor_ms, 2)
            if floor_ms else None}


def run(h: Harness, o) -> dict:
    reason = missing_dependency()
    if reason:
        return {"skipped": reason}
    from pooling.bridging import session_name_on_bridge
    from pooling.models import WhatsAppSession

    levels = [int(x) for x in str(o.agents_parallel).split(",")]
    rounds = [int(x) for x in str(o.agents_rounds).split(",")]
    h.start_web(env={**ENV, "BENCH_BARE_VIEW": "true"})
    h.start_workers("maintenance", 1, env=ENV)
    h.start_workers("ai", o.workers, env=ENV)
    h.start_workers("low", o.workers, env=ENV)
    sandbox = h.start_sandbox(capacity=2)
    h.ready()
    tier = bench_tier("bench-agents", messages_per_second=1000, send_queue="low")
    tenant, _ = make_tenant(tier, "bench agents")
    register_sandbox_slot(sandbox, tier=tier, capacity=2)
    start_working_sessions([tenant])
    setup_agent(tenant)
    session_name = session_name_on_bridge(WhatsAppSession.objects.get(tenant=tenant))
    figures: dict = {"workers_ai": o.workers, "workers_low": o.workers}
    p50s = {}
    with httpx.Client(timeout=10) as client:
        for level, n_rounds in zip(levels, rounds + [1] * len(levels)):
            samples: list[dict | None] = []
            cpu_before = h.cpu_by_process()
            for r in range(n_rounds):
                senders = [f"4479{level:03d}{r:03d}{i:04d}" for i in range(level)]
                samples += one_round(tenant, client, sandbox.extra["base_url"], session_name, senders)
            got = [s for s in samples if s is not None]
            cpu_after = h.cpu_by_process()
            # Where a reply's CPU went, per process: the goal at 100 needs the whole path's sum small.
            cpu = {name: (cpu_after[name] - cpu_before.get(name, 0.0)) * 1000 / max(1, len(got))
                   for name in cpu_after}
            figures[f"c{level}_cpu_ms_per_reply"] = {name: round(ms, 1) for name, ms in
                                                     sorted(cpu.items(), key=lambda kv: -kv[1])}
            figures[f"c{level}_cpu_ms_per_reply_all"] = round(sum(cpu.values()), 1)
            totals = [s["total"] for s in got]
            p50s[level] = percentile(totals, 50)
            if level == 1:  # few samples: show them in order (the first of each worker process is the cold one)
                figures["c1_totals_ms_in_order"] = [round(t) for t in totals]
            figures.update({f"c{level}_replies": len(got), f"c{level}_unanswered": len(samples) - len(got),
                            f"c{level}_p50_ms": p50s[level], f"c{level}_p95_ms": percentile(totals, 95)})
            for hop in HOPS:
                figures[f"c{level}_{hop}_p50_ms"] = percentile([s[hop] for s in got], 50)
        figures.update(floor(h, client, figures, high=max(levels)))
        profile = (profile_respond(h, tenant, client, sandbox.extra["base_url"], session_name, o.profile_messages)
                   if o.profile else None)
    low, high = min(levels), max(levels)
    result = {"figures": figures,
              "ratio": {"name": f"p50 at {high} parallel / p50 at {low}", "value": p50s[high] / p50s[low]}}
    if profile:
        result["profile"] = profile
    return result
