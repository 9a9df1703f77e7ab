"""What the operations pages and /metrics read. Read-only, across every app."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal

import psutil
from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from rq import Worker
from rq.registry import FailedJobRegistry, StartedJobRegistry

from pooling.models import Alert, Slot, WhatsAppSession
from pooling.selectors import PoolStatus, pool_statuses
from tenants.models import Tenant
from waplatform.queues import get_queue
from waplatform.redis import get_redis

from pooling.jobs import LAST_HEALTH_CHECK_KEY  # noqa: E402


def pools() -> list[PoolStatus]:
    return pool_statuses()


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
    rows = []
    for name in settings.QUEUE_NAMES:
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


ROLE_MARKERS = [
    ("daphne", "web"),
    ("run_worker_pool", "workers"),
    ("rqworker", "workers"),
    ("rqcron", "scheduler"),
    ("pooling.bridges.sandbox", "sandbox"),
    ("waplatform.launcher", "launcher"),
    ("redis-server", "redis"),
]


def platform_processes() -> list[PlatformProcess]:
    """This host's platform processes, found by their command lines (one host's view)."""
    found = []
    base = str(settings.BASE_DIR)
    for proc in psutil.process_iter(["pid", "cmdline", "cwd", "memory_info"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if not cmdline or (base not in cmdline and proc.info.get("cwd") != base):
            continue
        role = next((r for marker, r in ROLE_MARKERS if marker in cmdline), None)
        if role and proc.info.get("memory_info"):
            found.append(PlatformProcess(pid=proc.info["pid"], role=role, rss=proc.info["memory_info"].rss))
    return sorted(found, key=lambda p: (p.role, p.pid))


def last_health_check_age() -> float | None:
    value = get_redis().get(LAST_HEALTH_CHECK_KEY)
    return time.time() - float(value) if value else None


def open_alerts():
    return Alert.objects.filter(resolved_at__isnull=True).order_by("-opened_at")


@dataclass
class TenantCostRow:
    tenant: Tenant
    slots: Decimal
    messages: Decimal
    ai: Decimal
    price_to_date: Decimal

    @property
    def total(self) -> Decimal:
        return self.slots + self.messages + self.ai

    @property
    def margin(self) -> Decimal:
        return self.price_to_date - self.total


def tenant_costs(now=None) -> list[TenantCostRow]:
    """Month-to-date cost per tenant against its tier's price pro-rated to today."""
    from pooling.costs import contributed_costs, month_start, slot_cost_by_tenant

    now = now or timezone.now()
    start = month_start(now)
    next_month = (start + timezone.timedelta(days=32)).replace(day=1)
    elapsed = Decimal((now - start).total_seconds()) / Decimal((next_month - start).total_seconds())
    slot_costs = slot_cost_by_tenant(start=start, end=now)
    rows = []
    for tenant in Tenant.objects.select_related("tier").order_by("name"):
        extra = contributed_costs(tenant, start)
        rows.append(
            TenantCostRow(
                tenant=tenant,
                slots=slot_costs.get(tenant.pk, Decimal(0)),
                messages=extra.get("messages", Decimal(0)),
                ai=extra.get("ai", Decimal(0)),
                price_to_date=(tenant.tier.monthly_price * elapsed).quantize(Decimal("0.01")),
            )
        )
    return rows


def dead_webhook_deliveries() -> int:
    from messaging.models import WebhookDelivery

    return WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DEAD).count()


def websocket_connections() -> int:
    """Open inbox sockets, summed over every daphne process (the multiprocess gauge)."""
    import os

    from prometheus_client import CollectorRegistry, multiprocess

    from operations.metrics import WEBSOCKET_CONNECTIONS

    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return 0
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return int(registry.get_sample_value(WEBSOCKET_CONNECTIONS._name) or 0)


def webhook_deliveries_by_status() -> dict[str, int]:
    from messaging.models import WebhookDelivery

    return dict(WebhookDelivery.objects.values_list("status").annotate(n=Count("pk")))


def tenant_send_paused(slug: str) -> bool:
    from messaging.services import tenant_send_pause_seconds

    tenant = Tenant.objects.filter(slug=slug).first()
    return bool(tenant and tenant_send_pause_seconds(tenant_id=tenant.pk))
