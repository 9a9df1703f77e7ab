"""What the operations pages and /metrics read. Read-only, across every app."""

from __future__ import annotations

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
from pooling.costs import contributed_costs, month_start, slot_cost_by_tenant
from pooling.models import Slot, WhatsAppSession
from pooling.selectors import PoolStatus
from tenants.models import Tenant
from waplatform.queues import get_queue


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
    ("run_scheduler", "scheduler"),
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
    return pooling_selectors.last_health_check_age()


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
    """Month-to-date cost per tenant against its tier's price pro-rated to today.

    Every part is computed for all tenants at once (slots, then one query per
    cost contributor), so the page costs the same few queries at 10 or 1,000 tenants.
    """
    now = now or timezone.now()
    start = month_start(now)
    next_month = (start + timezone.timedelta(days=32)).replace(day=1)
    elapsed = Decimal((now - start).total_seconds()) / Decimal((next_month - start).total_seconds())
    slot_costs = slot_cost_by_tenant(start=start, end=now)
    extra = contributed_costs(since=start)
    messages, ai = extra.get("messages", {}), extra.get("ai", {})
    return [
        TenantCostRow(
            tenant=tenant,
            slots=slot_costs.get(tenant.pk, Decimal(0)),
            messages=Decimal(messages.get(tenant.pk, 0)),
            ai=Decimal(ai.get(tenant.pk, 0)),
            price_to_date=(tenant.tier.monthly_price * elapsed).quantize(Decimal("0.01")),
        )
        for tenant in Tenant.objects.select_related("tier").order_by("name")
    ]


def dead_webhook_deliveries() -> int:
    return WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DEAD).count()


def webhook_deliveries_by_status() -> dict[str, int]:
    return dict(WebhookDelivery.objects.values_list("status").annotate(n=Count("pk")))


def tenant_send_paused(slug: str) -> bool:
    tenant = Tenant.objects.filter(slug=slug).first()
    return bool(tenant and tenant_send_pause_seconds(tenant_id=tenant.pk))
