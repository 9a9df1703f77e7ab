"""Operator pages inside the admin, and /metrics.

The pages that aggregate (pools, costs and their CSV, /metrics) read from the read replica
when there is one (waplatform.db.analytics); actions and the health checks use the primary.
"""

from __future__ import annotations

import csv
import ipaddress
import hmac
from decimal import Decimal

from django.conf import settings
from django.contrib import admin, messages
from django.db import connection
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from operations import charts, metrics, selectors
from pooling import services as pooling_services
from pooling.costs import money
from pooling.models import Assignment
from waplatform.db import analytics, analytics_view, replica_state
from waplatform.redis import ping_all


def _context(request, title: str, **extra) -> dict:
    return {**admin.site.each_context(request), "title": title, **extra}


@analytics_view
def pools_view(request):
    slots = list(selectors.live_slots())
    tenants_by_slot: dict[int, list[str]] = {}
    for a in Assignment.objects.filter(ended_at__isnull=True).select_related("tenant"):
        tenants_by_slot.setdefault(a.slot_id, []).append(a.tenant.slug)
    for slot in slots:
        slot.tenant_slugs = sorted(tenants_by_slot.get(slot.pk, []))
    series = charts.utilisation_series()
    return render(request, "operations/pools.html", _context(
        request, "Pools", pools=selectors.pools(), slots=slots, chart=charts.utilisation_svg(series),
    ))


@require_POST
def slot_action(request, slot_id: int, action: str):
    if action == "drain":
        try:
            moved = pooling_services.drain_slot(slot_id=slot_id)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            messages.error(request, f"Slot {slot_id} left as it was: Redis is unreachable ({exc}); "
                                    "start it (or fix REDIS_URL) and drain again.")
            return redirect("operations-pools")
        messages.info(request, f"Drained slot {slot_id}: moved {moved} tenant(s). Next: the slot is retired; "
                               "its tenants' sessions restart on their new slots (see Pools).")
    elif action == "health":
        report = pooling_services.run_health_checks(slot_ids=[slot_id])
        messages.info(request, "; ".join(report.lines()))
    else:
        messages.error(request, f"Unknown action {action!r}.")
    return redirect("operations-pools")


SORT_KEYS = {
    "tenant": lambda r: r.tenant.name.lower(),
    "tier": lambda r: r.tenant.tier.name,
    "slots": lambda r: r.slots,
    "messages": lambda r: r.messages,
    "ai": lambda r: r.ai,
    "total": lambda r: r.total,
    "price": lambda r: r.price_to_date,
    "margin": lambda r: r.margin,
}


@analytics_view
def costs_view(request):
    rows = selectors.tenant_costs()
    sort = request.GET.get("sort", "-total")
    key = SORT_KEYS.get(sort.lstrip("-"), SORT_KEYS["total"])
    rows.sort(key=key, reverse=sort.startswith("-"))
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv")
        response["Content-Disposition"] = 'attachment; filename="tenant-costs.csv"'
        writer = csv.writer(response)
        writer.writerow(["tenant", "tier", "slots", "messages", "ai", "total", "price_to_date", "margin"])
        for r in rows:
            writer.writerow([r.tenant.slug, r.tenant.tier.name, r.slots, r.messages, r.ai, r.total,
                             r.price_to_date, r.margin])
        return response
    per_tier: dict[str, dict] = {}
    for r in rows:
        t = per_tier.setdefault(r.tenant.tier.name, {"tenants": 0, "total": 0})
        t["tenants"] += 1
        t["total"] += r.total
    for t in per_tier.values():
        t["per_tenant"] = money(t["total"] / t["tenants"]) if t["tenants"] else money(0)
    overhead = selectors.operator_overhead()
    return render(request, "operations/costs.html", _context(
        request, "Costs (month to date)", rows=rows, sort=sort, per_tier=per_tier,
        overhead=overhead, overhead_total=money(sum(overhead.values(), Decimal(0))),
        columns=["tenant", "tier", "slots", "messages", "ai", "total", "price", "margin"],
    ))


def queues_view(request):
    return render(request, "operations/queues.html", _context(request, "Queues", queues=selectors.queues()))


def health_view(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        database = "ok"
    except Exception as exc:  # noqa: BLE001 - shown to the operator as is
        database = str(exc)
    redis_states = [(role, error or "ok") for role, error in ping_all().items()]
    processes = selectors.platform_processes()
    return render(request, "operations/health.html", _context(
        request, "Health", database=database, redis_states=redis_states, replica=replica_state().describe(),
        process_groups=selectors.process_groups(processes), process_count=len(processes),
        process_rss=sum(p.rss for p in processes), websockets=metrics.websocket_connections(),
        last_health_check=selectors.last_health_check_age(), alerts=selectors.open_alerts(),
    ))


def _from_loopback(request) -> bool:
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


@require_GET
def metrics_view(request):
    """Prometheus text. With METRICS_TOKEN set, only with it; unset, only from this host.
    REMOTE_ADDR is the client's (daphne --proxy-headers behind nginx), not the proxy's."""
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return HttpResponseForbidden("metrics token required: Authorization: Bearer <METRICS_TOKEN>")
    elif not _from_loopback(request):
        return HttpResponseForbidden("/metrics answers other hosts only with a token: set METRICS_TOKEN and "
                                     "send Authorization: Bearer <METRICS_TOKEN>")
    with analytics():
        body = metrics.render()
    return HttpResponse(body, content_type="text/plain; version=0.0.4; charset=utf-8")
