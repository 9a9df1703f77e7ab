"""The tenant admin page's overview: session, slot, usage, cost and keys, each with its next step.

Drawn here because operations may read every app; the tenants admin cannot import pooling.
"""

from django import template
from django.conf import settings
from django.utils import timezone

from messaging.models import Message
from pooling.costs import money, tenant_cost_month_to_date
from pooling.models import Assignment, WhatsAppSession

register = template.Library()


def _session_next_step(session, assignment) -> str:
    if session is None or not session.wanted:
        return "Start the session: POST /api/v1/session/start with the tenant's key (docs/quickstart.md)."
    if assignment is None:
        return "Waiting for room in the tier's pool: add a slot (Pools page) or wait for one to free up."
    if session.status == WhatsAppSession.Status.SCAN_QR_CODE:
        return "Scan the QR code: GET /api/v1/session/qr.png, on the phone under Linked devices."
    if session.status == WhatsAppSession.Status.WORKING:
        return "Working: messages flow. Watch the inbox, or the messages list below."
    return "Starting or recovering: the pool's health check retries it; see the session's events."


@register.inclusion_tag("operations/_tenant_overview.html")
def tenant_overview(tenant):
    session = WhatsAppSession.objects.filter(tenant=tenant).first()
    assignment = Assignment.objects.select_related("slot").filter(tenant=tenant, ended_at__isnull=True).first()
    cost = tenant_cost_month_to_date(tenant=tenant)
    keys = list(tenant.api_keys.all())
    live_keys = [k for k in keys if k.revoked_at is None]
    since = cost.since or timezone.now()
    return {
        "tenant": tenant,
        "session": session,
        "slot": assignment.slot if assignment else None,
        "session_next": _session_next_step(session, assignment),
        "messages_in": Message.objects.filter(tenant=tenant, direction=Message.Direction.IN, accepted_at__gte=since).count(),
        "messages_out": Message.objects.filter(tenant=tenant, direction=Message.Direction.OUT, accepted_at__gte=since).count(),
        "cost": cost,
        "total": money(cost.total),
        "margin": money(cost.price_to_date - cost.total),
        "live_keys": live_keys,
        "revoked_keys": len(keys) - len(live_keys),
        "keys_next": ("Issue a key: select the tenant in the list, action \"Issue a new API key\"." if not live_keys
                      else "Give a key to the developer; rotate by issuing a new one and revoking the old."),
        "base_url": settings.PUBLIC_BASE_URL,
    }
