"""inbound: sandbox-injected inbound message -> event on the live-inbox WebSocket, against
a raw channel-layer group_send -> the same WebSocket.

Workload. daphne, one `maintenance` worker, one sandbox worker hosting the
tenant's WORKING session. A WebSocket client (websockets, sync) connects to
/ws/inbox/ with its API key in the Authorization header. Raw: the driver calls
async_to_sync(channel_layer.group_send) on the tenant's group, exactly what
messaging.live.broadcast_event does, and times until the frame arrives. Full:
the driver POSTs /sandbox/inbound; the sandbox signs and posts the WAHA
webhook to /hooks/waha/<slot>/, the platform verifies, stores, commits and
publishes, and the consumer forwards the event. N samples each, one at a
time (latency, not throughput), after one warm-up each. Ratio: p99 full / p99 raw
(the p50s' ratio is a figure); the full path is also split where the event is built.
Floor: N GETs of a bare Django view (/bench/bare) through the same daphne, one at a
time; bare + raw (per percentile) is what any HTTP webhook that publishes costs at
least, so `floor_p99_over_raw_p99` says how low the ratio can go here and
`inbound_p99_over_floor_p99` how far the platform is from that.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

import httpx

from bench.harness import (SANDBOX_KEY, Harness, bench_tier, make_tenant, percentile, register_sandbox_slot,
                           start_working_sessions)

NAME = "inbound"
WAIT_SECONDS = 10.0


def connect(h: Harness, token: str):
    """The consumer's socket, or a reason why there is none."""
    from websockets.sync.client import connect as ws_connect

    url = h.web_url.replace("http://", "ws://") + "/ws/inbox/"
    try:
        # A browser on the inbox page sends its Origin; AllowedHostsOriginValidator requires one.
        return ws_connect(url, open_timeout=5, max_size=None, origin=h.web_url,
                          additional_headers={"Authorization": f"Bearer {token}"}), None
    except Exception as exc:  # a 404/403 handshake, a refused upgrade: the consumer is not there
        return None, f"needs /ws/inbox/ ({type(exc).__name__}: {exc})"


def wait_for_frame(ws, marker: str, timeout: float = WAIT_SECONDS) -> tuple[float, str] | None:
    """(perf_counter(), frame) when a frame containing `marker` arrives; None on timeout."""
    deadline = time.perf_counter() + timeout
    while (left := deadline - time.perf_counter()) > 0:
        try:
            frame = ws.recv(timeout=left)
        except TimeoutError:
            return None
        text = frame if isinstance(frame, str) else frame.decode(errors="replace")
        if marker in text:
            return time.perf_counter(), text
    return None


def wait_for(ws, marker: str, timeout: float = WAIT_SECONDS) -> float | None:
    """perf_counter() when a frame containing `marker` arrives; None on timeout."""
    got = wait_for_frame(ws, marker, timeout)
    return None if got is None else got[0]


def sample_raw(ws, tenant_id: int) -> float | None:
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from messaging.live import tenant_group

    marker = uuid.uuid4().hex
    event = {"id": marker, "type": "message.status", "tenant": tenant_id, "created_at": "",
             "data": {"id": 0, "status": "read", "bench": marker}}
    t0 = time.perf_counter()
    async_to_sync(get_channel_layer().group_send)(tenant_group(tenant_id), {"type": "event.message", "event": event})
    arrived = wait_for(ws, marker)
    return None if arrived is None else (arrived - t0) * 1000


def sample_inbound(ws, client: httpx.Client, base_url: str, session_name: str) -> dict | None:
    """Total ms from the POST to the frame, split where the event was built (its `created_at`,
    inside the intake transaction): before it the sandbox, the webhook and the request up to the
    write; after it the commit, the fast path and the channel layer."""
    marker = uuid.uuid4().hex
    wall0, t0 = time.time(), time.perf_counter()
    client.post(base_url + "/sandbox/inbound", json={"session": session_name, "from": "447700900555",
                                                      "text": f"bench inbound {marker}", "name": "Bench"},
                headers={"X-Api-Key": SANDBOX_KEY}).raise_for_status()
    got = wait_for_frame(ws, marker)
    if got is None:
        return None
    arrived, frame = got
    total = (arrived - t0) * 1000
    try:
        created = datetime.fromisoformat(json.loads(frame)["created_at"]).timestamp()
    except (ValueError, KeyError, TypeError):
        return {"total": total}
    to_event = (created - wall0) * 1000
    return {"total": total, "to_event": to_event, "event_to_socket": total - to_event}


def sample_bare(client: httpx.Client, web_url: str) -> float:
    """ms for one GET of a bare Django view (/bench/bare) through the same daphne: the cost of any
    request before the intake does anything, the floor an HTTP webhook cannot go under."""
    t0 = time.perf_counter()
    client.get(web_url + "/bench/bare").raise_for_status()
    return (time.perf_counter() - t0) * 1000


def summary(prefix: str, values: list[float | None]) -> dict:
    got = [v for v in values if v is not None]
    return {f"{prefix}_samples": len(got), f"{prefix}_lost": len(values) - len(got),
            f"{prefix}_p50_ms": percentile(got, 50), f"{prefix}_p99_ms": percentile(got, 99)}


def run(h: Harness, o) -> dict:
    from pooling.bridging import session_name_on_bridge
    from pooling.models import WhatsAppSession

    h.start_web(env={"BENCH_BARE_VIEW": "true"})
    h.start_workers("maintenance", 1)
    sandbox = h.start_sandbox(capacity=2)
    h.ready()
    tier = bench_tier("bench-inbound")
    tenant, token = make_tenant(tier, "bench inbound")
    register_sandbox_slot(sandbox, tier=tier, capacity=2)
    start_working_sessions([tenant])
    ws, reason = connect(h, token)
    if ws is None:
        return {"skipped": reason}
    session_name = session_name_on_bridge(WhatsAppSession.objects.get(tenant=tenant))
    n = o.inbound_samples
    with ws, httpx.Client(timeout=10) as client:
        sample_raw(ws, tenant.pk)
        raw = [sample_raw(ws, tenant.pk) for _ in range(n)]
        if not any(raw):
            return {"skipped": "the /ws/inbox/ consumer forwarded no raw group_send event"}
        sample_inbound(ws, client, sandbox.extra["base_url"], session_name)
        full = [sample_inbound(ws, client, sandbox.extra["base_url"], session_name) for _ in range(n)]
        sample_bare(client, h.web_url)
        bare = [sample_bare(client, h.web_url) for _ in range(n)]
    figures = {**summary("raw_group_send", raw), **summary("inbound", [f and f["total"] for f in full]),
               **summary("bare_request", bare)}
    # The least an inbound message can cost on this path: one request to a Django view plus one
    # publish (the sandbox's own hop and the write left out), from this run's samples.
    for p in ("p50", "p99"):
        floor = figures[f"bare_request_{p}_ms"] + figures[f"raw_group_send_{p}_ms"]
        figures[f"floor_{p}_ms"] = floor
        figures[f"floor_{p}_over_raw_{p}"] = floor / figures[f"raw_group_send_{p}_ms"]
        figures[f"inbound_{p}_over_floor_{p}"] = figures[f"inbound_{p}_ms"] / floor
    for part in ("to_event", "event_to_socket"):
        values = [f[part] for f in full if f and part in f]
        figures[f"inbound_{part}_p50_ms"] = percentile(values, 50)
        figures[f"inbound_{part}_p99_ms"] = percentile(values, 99)
    figures["inbound_p50_over_raw_p50"] = figures["inbound_p50_ms"] / figures["raw_group_send_p50_ms"]
    # Which samples make the tail (their order in the run): a warm-up left over, or a periodic stall.
    figures["inbound_slowest"] = [[i, round(f["total"], 1), round(f.get("to_event", float("nan")), 1)]
                                  for i, f in sorted(enumerate(full), key=lambda kv: -(kv[1] or {}).get("total", 0))[:3]
                                  if f]
    return {"figures": figures,
            "ratio": {"name": "inbound p99 / raw group_send p99",
                      "value": figures["inbound_p99_ms"] / figures["raw_group_send_p99_ms"]}}
