"""Reads for messages, conversations and webhooks. Always scoped by tenant."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import OuterRef, Subquery, Count, QuerySet

from messaging.models import Conversation, Message, WebhookDelivery
from tenants.models import Tenant

# Cloud API pricing types that Meta does not bill (PMP since July 2025).
FREE_PRICING_TYPES = ("free_customer_service", "free_entry_point")


def messages_for(*, queryset: QuerySet[Message], status: str = "", direction: str = "", contact: str = "",
                 since: datetime | None = None) -> QuerySet[Message]:
    """Filter a tenant-scoped message queryset. `contact` is a contact id or a wa_id."""
    if status:
        queryset = queryset.filter(status__in=status.split(","))
    if direction:
        queryset = queryset.filter(direction=direction)
    if contact:
        queryset = queryset.filter(contact_id=int(contact)) if contact.isdigit() and len(contact) < 12 \
            else queryset.filter(contact__wa_id=contact)
    if since is not None:
        queryset = queryset.filter(accepted_at__gte=since)
    return queryset.select_related("contact", "media")


def conversations_with_contacts(queryset: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """With the contact and the last message's text, direction and type, in the one query."""
    last = Message.objects.filter(conversation=OuterRef("pk")).order_by("-accepted_at", "-pk")
    return queryset.select_related("contact").annotate(
        last_message_text=Subquery(last.values("text")[:1]),
        last_message_direction=Subquery(last.values("direction")[:1]),
        last_message_type=Subquery(last.values("type")[:1]),
    )


def deliveries_of(queryset: QuerySet[WebhookDelivery], *, status: str = "") -> QuerySet[WebhookDelivery]:
    return queryset.filter(status=status) if status else queryset


def message_costs_by_tenant(*, since: datetime, tenant_ids: list[int] | None = None) -> dict[int, Decimal]:
    """USD of outbound Cloud API messages since `since` per tenant id (every tenant when None), by
    pricing category, in one query: a cost contributor (pooling.costs).

    Bridge (WAHA/sandbox) messages carry no category and cost nothing here;
    their cost is the slot's, in pooling.costs.
    """
    rows = (
        Message.objects.filter(direction=Message.Direction.OUT, accepted_at__gte=since)
        .exclude(pricing_category="")
        .exclude(pricing_type__in=FREE_PRICING_TYPES)
    )
    if tenant_ids is not None:
        rows = rows.filter(tenant_id__in=tenant_ids)
    prices = {k: Decimal(str(v)) for k, v in settings.MESSAGE_PRICES.items()}
    costs: dict[int, Decimal] = {}
    for tenant_id, category, n in rows.values_list("tenant_id", "pricing_category").annotate(n=Count("pk")).order_by():
        costs[tenant_id] = costs.get(tenant_id, Decimal(0)) + prices.get(category, Decimal(0)) * n
    return costs


def message_cost_for_tenant(*, tenant: Tenant, since: datetime) -> Decimal:
    return message_costs_by_tenant(since=since, tenant_ids=[tenant.pk]).get(tenant.pk, Decimal(0))
