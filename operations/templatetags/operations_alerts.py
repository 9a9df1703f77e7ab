"""The open-alert count, shown where an operator already looks (admin index, operations pages)."""

from django import template
from django.urls import reverse

from operations.models import Alert

register = template.Library()


@register.inclusion_tag("operations/_alert_count.html")
def open_alert_count():
    count = Alert.objects.filter(resolved_at__isnull=True).count()
    return {"count": count, "url": reverse("operations-health") + "#open-alerts"}
