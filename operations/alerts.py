"""Threshold alerts, evaluated every 30 s. Opening and resolving go through operations.services,
which keeps one open row per (kind, key) and publishes alert.opened / alert.resolved."""

from __future__ import annotations

from django.conf import settings

from operations import selectors
from operations.models import Alert
from operations.services import raise_alert, resolve_alert


def _toggle(kind: str, key: str, firing: bool, message: str, report: list[str]) -> None:
    if firing:
        raise_alert(kind=kind, key=key, message=message)
        report.append(f"firing {kind} {key}: {message}")
    elif resolve_alert(kind=kind, key=key):
        report.append(f"resolved {kind} {key}")


def evaluate_alerts() -> list[str]:
    report: list[str] = []
    limit_bytes = settings.ALERT_PROCESS_MEMORY_MB * 1024 * 1024
    processes = selectors.platform_processes()
    over = {p.pid: p for p in processes if p.rss > limit_bytes}
    for process in processes:
        _toggle(
            Alert.Kind.PROCESS_MEMORY, str(process.pid), process.pid in over,
            f"{process.role} process {process.pid} uses {process.rss / 2**20:.0f} MB "
            f"(limit {settings.ALERT_PROCESS_MEMORY_MB} MB)", report,
        )
    alive = {str(p.pid) for p in processes}
    for key in Alert.objects.filter(kind=Alert.Kind.PROCESS_MEMORY, resolved_at__isnull=True).values_list(
        "key", flat=True
    ):
        if key not in alive:  # the process is gone (replaced after its job, or restarted)
            _toggle(Alert.Kind.PROCESS_MEMORY, key, False, "", report)
    for queue in selectors.queues():
        _toggle(
            Alert.Kind.QUEUE_BACKLOG, queue.name, queue.waiting > settings.ALERT_QUEUE_WAITING,
            f"queue {queue.name} has {queue.waiting} waiting jobs (limit {settings.ALERT_QUEUE_WAITING})", report,
        )
    for pool in selectors.pools():
        # A dedicated pool's slots are full by design (one tenant each, a new slot per tenant):
        # its utilisation says nothing about headroom.
        dedicated = pool.tier.tenants_per_slot == 1
        busy = not dedicated and pool.capacity and pool.used / pool.capacity > settings.ALERT_POOL_UTILISATION
        _toggle(
            Alert.Kind.POOL_BUSY, pool.tier.name, bool(busy),
            f"the {pool.tier.name} pool is {pool.utilisation}% full "
            f"(limit {settings.ALERT_POOL_UTILISATION:.0%})", report,
        )
    for alert in Alert.objects.filter(kind=Alert.Kind.SPAM_RATE_LIMIT, resolved_at__isnull=True):
        # Opened by messaging when Meta answered 131048; over when the send pause ends.
        if not selectors.tenant_send_paused(alert.key):
            resolve_alert(kind=alert.kind, key=alert.key)
            report.append(f"resolved {alert.kind} {alert.key}")
    dead = selectors.dead_webhook_deliveries()
    _toggle(
        Alert.Kind.WEBHOOK_DEAD_LETTERS, "all", dead > 0,
        f"{dead} webhook deliveries are dead-lettered; replay them from the admin or `manage.py replay_webhooks`",
        report,
    )
    return report
