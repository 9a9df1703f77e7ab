"""Operator alerts: one open row per (kind, key), resolved when the cause goes away."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from pooling.models import Alert


def raise_alert(*, kind: str, key: str, message: str) -> Alert:
    open_alert = Alert.objects.filter(kind=kind, key=key, resolved_at__isnull=True).first()
    if open_alert:
        if open_alert.message != message:
            open_alert.message = message
            open_alert.save(update_fields=["message"])
        return open_alert
    try:
        with transaction.atomic():
            return Alert.objects.create(kind=kind, key=key, message=message)
    except IntegrityError:  # raised concurrently by another worker: one open alert is enough
        return Alert.objects.get(kind=kind, key=key, resolved_at__isnull=True)


def resolve_alert(*, kind: str, key: str) -> int:
    return Alert.objects.filter(kind=kind, key=key, resolved_at__isnull=True).update(resolved_at=timezone.now())
