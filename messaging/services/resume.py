"""After a tenant's reactivation: enqueue again the sends and webhook deliveries that waited.

While a tenant is suspended its queued messages and open deliveries are not
claimable (messaging.services.delivery, messaging.webhooks_out) and the sweep
skips them: they stay due. Reactivation runs this once (a job, after commit);
one batch per kind here, and the every-minute sweep takes whatever is left.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from messaging import leases, webhooks_out
from messaging.models import Message
from tenants.models import Tenant
from waplatform.queues import enqueue_on_commit


@dataclass
class Resumed:
    messages: int = 0
    deliveries: int = 0


def schedule_resume(tenant_id: int) -> None:
    """The reactivation hook (registered in MessagingConfig.ready())."""
    enqueue_on_commit("messaging.jobs.resume_tenant", tenant_id, queue="maintenance")


def resume_tenant(*, tenant_id: int) -> Resumed:
    tenant = Tenant.objects.select_related("tier").filter(pk=tenant_id, status=Tenant.Status.ACTIVE).first()
    if tenant is None:
        return Resumed()  # gone, or suspended again meanwhile
    due = (
        Message.objects.filter(tenant=tenant, direction=Message.Direction.OUT, status=Message.Status.QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))
        .order_by("pk")
        .values_list("pk", flat=True)[: settings.SWEEP_BATCH_SIZE]
    )
    messages = leases.requeue(job="messaging.jobs.deliver_message", queue=tenant.tier.send_queue, ids=list(due),
                              due_now=Message.objects.filter(status=Message.Status.QUEUED))
    return Resumed(messages=messages, deliveries=webhooks_out.requeue_tenant_deliveries(tenant_id=tenant.pk))
