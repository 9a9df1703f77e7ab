"""Writes of the operations app: the storage behind waplatform.alerts."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.utils import timezone

from operations.models import Alert
from waplatform.events import publish_event


def raise_alert(*, kind: str, key: str, message: str) -> Alert:
    """Joins the caller's transaction: the alert commits (and alert.opened is published) with its cause."""
    open_alert = Alert.objects.filter(kind=kind, key=key, resolved_at__isnull=True).first()
    if open_alert:
        if open_alert.message != message:
            open_alert.message = message
            open_alert.save(update_fields=["message"])
        return open_alert
    try:
        with transaction.atomic():
            alert = Alert.objects.create(kind=kind, key=key, message=message)
    except IntegrityError:  # raised concurrently by another worker: one open alert is enough
        return Alert.objects.get(kind=kind, key=key, resolved_at__isnull=True)
    publish_event(tenant_id=None, type="alert.opened", data=_alert_data(alert))
    return alert


def resolve_alert(*, kind: str, key: str) -> int:
    resolved = list(Alert.objects.filter(kind=kind, key=key, resolved_at__isnull=True))
    now = timezone.now()
    for alert in resolved:
        alert.resolved_at = now
        alert.save(update_fields=["resolved_at"])
        publish_event(tenant_id=None, type="alert.resolved", data=_alert_data(alert))
    return len(resolved)


def _alert_data(alert: Alert) -> dict:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "key": alert.key,
        "message": alert.message,
        "opened_at": alert.opened_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
    }
