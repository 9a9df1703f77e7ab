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
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from agents.models import AgentReply
from operations import selectors
from tenants.models import Tenant
from waplatform import counters
from waplatform.metrics import WEBSOCKET_CONNECTIONS  # noqa: F401  (read by operations.selectors)

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


@lru_cache(maxsize=4096)
def _tier_of(tenant_id: int) -> str:
    return Tenant.objects.filter(pk=tenant_id).values_list("tier__name", flat=True).first() or "unknown"


def _seconds_since(iso: str | None, now: datetime) -> float | None:
    if not iso:
        return None
    return max(0.0, (now - datetime.fromisoformat(iso)).total_seconds())


def observe_event(event: dict) -> None:
    """An event subscriber (OperationsConfig.ready()): counts and times what the event says happened."""
    kind, data, now = event["type"], event.get("data") or {}, timezone.now()
    tier = _tier_of(event["tenant"]) if event.get("tenant") else "unknown"
    if kind == "message.sent":
        MESSAGES.labels("out", "sent", tier).inc()
        latency = _seconds_since(data.get("accepted_at"), now)
        if latency is not None:
            SEND_LATENCY.labels(tier).observe(latency)
        _observe_agent_reply(data.get("id"), now)
    elif kind == "message.failed":
        MESSAGES.labels("out", "failed", tier).inc()
    elif kind == "message.received":
        MESSAGES.labels("in", "received", tier).inc()
        latency = _seconds_since(data.get("accepted_at"), now)
        if latency is not None:
            INBOUND_PUSH_LATENCY.observe(latency)


def _observe_agent_reply(message_id: int | None, now: datetime) -> None:
    """An agent's reply just went out: time it from the inbound message it answers (the seed's
    "average response time under 2 s")."""
    inbound_at = (
        AgentReply.objects.filter(message_id=message_id).values_list("in_reply_to__accepted_at", flat=True).first()
    )
    if inbound_at:
        AGENT_REPLY_LATENCY.observe(max(0.0, (now - inbound_at).total_seconds()))


class StateCollector:
    """Gauges read at scrape time from the database and Redis."""

    def collect(self):
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

        lookups = CounterMetricFamily("wap_cache_lookups", "Trigger and AI response cache lookups",
                                      labels=["cache", "result"])
        unrouted = CounterMetricFamily("wap_bridge_events_unrouted",
                                       "Signed bridge events for a number or session no tenant holds (dropped)",
                                       labels=["dialect"])
        for name, labels, value in counters.read_all():
            if name == "cache_lookups":
                lookups.add_metric([labels.get("cache", ""), labels.get("result", "")], value)
            elif name == "bridge_events_unrouted":
                unrouted.add_metric([labels.get("dialect", "")], value)
        yield lookups
        yield unrouted

        deliveries = GaugeMetricFamily("wap_webhook_deliveries", "Deliveries to tenants' endpoints by outcome",
                                       labels=["status"])
        for status, count in selectors.webhook_deliveries_by_status().items():
            deliveries.add_metric([status], count)
        yield deliveries

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


def websocket_connections() -> int:
    """Open inbox sockets, summed over every daphne process (the multiprocess gauge)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return 0
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return int(registry.get_sample_value(WEBSOCKET_CONNECTIONS._name) or 0)


def current_rss() -> int:
    return psutil.Process().memory_info().rss
