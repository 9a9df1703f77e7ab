"""What the operations pages and /metrics read. Read-only, across every app."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal

import psutil
from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from rq import Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry

from messaging.models import WebhookDelivery
from messaging.services import tenant_send_pause_seconds
from operations.models import Alert
from pooling import selectors as pooling_selectors
from pooling.costs import billed_since, contributed_costs, money, month_start, price_to_date, slot_cost_by_tenant, slot_overhead
from pooling.hosts import live_hosts
from pooling.models import Slot, WhatsAppSession
from pooling.selectors import PoolStatus
from tenants.models import Tenant
from waplatform.queues import HOST_QUEUE_PREFIX, get_queue


def pools() -> list[PoolStatus]:
    return pooling_selectors.pool_statuses()


def sessions_by_status() -> dict[str, int]:
    return dict(WhatsAppSession.objects.values_list("status").annotate(n=Count("pk")))


def live_slots():
    return Slot.objects.exclude(state=Slot.State.RETIRED).select_related("tier").order_by("tier", "pk")


@dataclass
class QueueStatus:
    name: str
    waiting: int
    running: int
    failed: int
    workers: int
    oldest_age_seconds: float | None


def queues() -> list[QueueStatus]:
    """Every platform queue, then each bridge host's own queue (`bridges@<host>`, pooling.hosts): the hosts
    that beat, and those that hold slots (a host whose bridges role stopped beating shows, with 0 workers)."""
    hosts = live_hosts() | set(Slot.objects.exclude(state=Slot.State.RETIRED).exclude(host="")
                               .values_list("host", flat=True).distinct())
    rows = []
    for name in [*settings.QUEUE_NAMES, *(f"{HOST_QUEUE_PREFIX}{host}" for host in sorted(hosts))]:
        queue = get_queue(name)
        oldest = None
        first = queue.get_job_ids(0, 1)
        if first:
            job = queue.fetch_job(first[0])
            if job and job.enqueued_at:
                enqueued = job.enqueued_at if job.enqueued_at.tzinfo else job.enqueued_at.replace(tzinfo=UTC)
                oldest = max(0.0, (timezone.now() - enqueued).total_seconds())
        rows.append(
            QueueStatus(
                name=name,
                waiting=queue.count,
                running=StartedJobRegistry(queue=queue).count,
                failed=FailedJobRegistry(queue=queue).count,
                workers=Worker.count(queue=queue),
                oldest_age_seconds=oldest,
            )
        )
    return rows


@dataclass
class PlatformProcess:
    pid: int
    role: str
    rss: int
    host: str = ""


@dataclass
class ProcessGroup:
    host: str
    role: str
    pids: list[int]
    rss: int

    @property
    def count(self) -> int:
        return len(self.pids)


def process_groups(processes: list[PlatformProcess]) -> list[ProcessGroup]:
    """One row per (host, role) with its process count and memory, for a page that reads at a glance."""
    groups: dict[tuple[str, str], ProcessGroup] = {}
    for p in processes:
        group = groups.setdefault((p.host, p.role), ProcessGroup(host=p.host, role=p.role, pids=[], rss=0))
        group.pids.append(p.pid)
        group.rss += p.rss
    return sorted(groups.values(), key=lambda g: (g.host, g.role))


ROLE_MARKERS = [
    ("daphne", "web"),
    ("run_worker_pool", "workers"),
    ("rqworker", "workers"),
    ("run_scheduler", "scheduler"),
    ("rqcron", "scheduler"),
    ("pooling.bridges.sandbox", "sandbox"),
    ("waplatform.launcher", "launcher"),
    ("redis-server", "redis"),
]


def platform_processes() -> list[PlatformProcess]:
    """This host's platform processes, found by their command lines (one host's view)."""
    found = []
    host = socket.gethostname()
    base = str(settings.BASE_DIR)
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "memory_info"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if not cmdline or (base not in cmdline and proc.info.get("cwd") != base):
            continue
        role = next((r for marker, r in ROLE_MARKERS if marker in cmdline), None)
        if role and proc.info.get("memory_info"):
            found.append(PlatformProcess(pid=proc.info["pid"], role=role, rss=proc.info["memory_info"].rss, host=host))
    return sorted(found, key=lambda p: (p.role, p.pid))


def last_health_check_age() -> float | None:
    return pooling_selectors.last_health_check_age()


def open_alerts():
    return Alert.objects.filter(resolved_at__isnull=True).order_by("-opened_at")


@dataclass
class TenantCostRow:
    """Amounts to the cent, so a row adds up as the operator reads it."""

    tenant: Tenant
    slots: Decimal
    messages: Decimal
    ai: Decimal
    price_to_date: Decimal
    media: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.slots + self.messages + self.ai + self.media

    @property
    def margin(self) -> Decimal:
        return self.price_to_date - self.total


def tenant_costs(now=None) -> list[TenantCostRow]:
    """Month-to-date cost per tenant against its tier's price for the time it existed this month.

    Every part is computed for all tenants at once (slots, then one query per
    cost contributor), so the page costs the same few queries at 10 or 1,000 tenants.
    """
    now = now or timezone.now()
    start = month_start(now)
    slot_costs = slot_cost_by_tenant(start=start, end=now)
    extra = contributed_costs(since=start)
    messages, ai, media = extra.get("messages", {}), extra.get("ai", {}), extra.get("media", {})
    return [
        TenantCostRow(
            tenant=tenant,
            slots=money(slot_costs.get(tenant.pk, 0)),
            messages=money(messages.get(tenant.pk, 0)),
            ai=money(ai.get(tenant.pk, 0)),
            media=money(media.get(tenant.pk, 0)),
            price_to_date=price_to_date(monthly_price=tenant.tier.monthly_price,
                                        since=billed_since(created_at=tenant.created_at, now=now), now=now),
        )
        for tenant in Tenant.objects.select_related("tier").order_by("name")
    ]


def operator_overhead(now=None) -> dict[str, Decimal]:
    """Tier name → month-to-date cost of slot time no tenant paid for (empty or down slots)."""
    now = now or timezone.now()
    return slot_overhead(start=month_start(now), end=now)


def dead_webhook_deliveries() -> int:
    return WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DEAD).count()


def webhook_deliveries_by_status() -> dict[str, int]:
    return dict(WebhookDelivery.objects.values_list("status").annotate(n=Count("pk")))


def tenant_send_paused(slug: str) -> bool:
    tenant = Tenant.objects.filter(slug=slug).first()
    return bool(tenant and tenant_send_pause_seconds(tenant_id=tenant.pk))
