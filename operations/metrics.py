"""Prometheus metrics, correct across the platform's many processes.

Two kinds:
- events counted where they happen (web, workers: many processes) with
  prometheus-client's multiprocess mode: each process writes its own mmap
  files under PROMETHEUS_MULTIPROC_DIR and /metrics adds them up. They are
  fed by an event-bus subscriber, so no app carries metrics code;
- state read at scrape time from the database and Redis (pools, sessions,
  queues): one reading, no per-process drift.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache

import psutil
from django.utils import timezone
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300)

MESSAGES = Counter("wap_messages_total", "Messages by direction, outcome and tier", ["direction", "outcome", "tier"])
SEND_LATENCY = Histogram(
    "wap_send_latency_seconds", "API accepted -> sent by the bridge", ["tier"], buckets=LATENCY_BUCKETS
)
INBOUND_PUSH_LATENCY = Histogram(
    "wap_inbound_push_latency_seconds", "Inbound stored -> pushed to the live inbox", buckets=LATENCY_BUCKETS
)
AGENT_REPLY_LATENCY = Histogram(
    "wap_agent_reply_latency_seconds", "Inbound message -> agent reply sent", buckets=LATENCY_BUCKETS
)
CACHE_LOOKUPS = Counter("wap_cache_lookups_total", "Trigger and AI response cache lookups", ["cache", "result"])
WEBHOOK_DELIVERIES = Counter("wap_webhook_deliveries_total", "Deliveries to tenants' endpoints", ["outcome"])
WEBSOCKET_CONNECTIONS = Gauge(
    "wap_websocket_connections", "Open live-inbox WebSocket connections", multiprocess_mode="livesum"
)


@lru_cache(maxsize=4096)
def _tier_of(tenant_id: int) -> str:
    from tenants.models import Tenant

    return Tenant.objects.filter(pk=tenant_id).values_list("tier__name", flat=True).first() or "unknown"


def _seconds_since(iso: str | None, now: datetime) -> float | None:
    if not iso:
        return None
    return max(0.0, (now - datetime.fromisoformat(iso)).total_seconds())


def observe_event(event: dict) -> None:
    """An EVENT_SUBSCRIBERS entry: counts and times what the event says happened."""
    kind, data, now = event["type"], event.get("data") or {}, timezone.now()
    tier = _tier_of(event["tenant"]) if event.get("tenant") else "unknown"
    if kind == "message.sent":
        MESSAGES.labels("out", "sent", tier).inc()
        latency = _seconds_since(data.get("accepted_at"), now)
        if latency is not None:
            SEND_LATENCY.labels(tier).observe(latency)
    elif kind == "message.failed":
        MESSAGES.labels("out", "failed", tier).inc()
    elif kind == "message.received":
        MESSAGES.labels("in", "received", tier).inc()
        latency = _seconds_since(data.get("accepted_at"), now)
        if latency is not None:
            INBOUND_PUSH_LATENCY.observe(latency)
    elif kind == "agent.replied":
        latency = _seconds_since(data.get("inbound_at"), now)
        if latency is not None:
            AGENT_REPLY_LATENCY.observe(latency)
    elif kind == "webhook.delivery":
        WEBHOOK_DELIVERIES.labels(data.get("outcome", "unknown")).inc()


class StateCollector:
    """Gauges read at scrape time from the database and Redis."""

    def collect(self):
        from operations import selectors

        pools = GaugeMetricFamily("wap_pool_utilisation_ratio", "Used / capacity of placeable slots", labels=["tier"])
        slots = GaugeMetricFamily("wap_pool_slots", "Slots by state", labels=["tier", "state"])
        waiting = GaugeMetricFamily("wap_pool_waiting_tenants", "Tenants waiting for a slot", labels=["tier"])
        for pool in selectors.pools():
            pools.add_metric([pool.tier.name], pool.used / pool.capacity if pool.capacity else 0.0)
            waiting.add_metric([pool.tier.name], pool.waiting)
            for state, count in pool.slots_by_state.items():
                slots.add_metric([pool.tier.name, state], count)
        yield from (pools, slots, waiting)

        sessions = GaugeMetricFamily("wap_sessions", "WhatsApp sessions by status", labels=["status"])
        for status, count in selectors.sessions_by_status().items():
            sessions.add_metric([status], count)
        yield sessions

        per_slot = GaugeMetricFamily("wap_slot_sessions", "Sessions on each live slot", labels=["tier", "slot"])
        for slot in selectors.live_slots():
            per_slot.add_metric([slot.tier.name, str(slot)], slot.used)
        yield per_slot

        depth = GaugeMetricFamily("wap_queue_depth", "Jobs waiting per rq queue", labels=["queue"])
        for queue in selectors.queues():
            depth.add_metric([queue.name], queue.waiting)
        yield depth

        memory = GaugeMetricFamily("wap_process_memory_bytes", "RSS of each platform process", labels=["role", "pid"])
        for process in selectors.platform_processes():
            memory.add_metric([process.role, str(process.pid)], process.rss)
        yield memory


def render() -> bytes:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    registry.register(StateCollector())
    return generate_latest(registry)


def current_rss() -> int:
    return psutil.Process().memory_info().rss
