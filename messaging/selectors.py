"""Reads for messages, conversations and webhooks. Always scoped by tenant."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from messaging.models import Contact, Conversation, Message, WebhookDelivery
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
    return queryset.select_related("contact", "assignee").prefetch_related("labels").annotate(
        last_message_text=Subquery(last.values("text")[:1]),
        last_message_direction=Subquery(last.values("direction")[:1]),
        last_message_type=Subquery(last.values("type")[:1]),
    )


class ConversationFilterError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


SEARCH_MIN_LENGTH, SEARCH_MAX_LENGTH = 2, 100
VIEWS = ("all", "mine", "unassigned")


def filter_conversations(queryset: QuerySet[Conversation], *, view: str = "all", user_id: int | None = None,
                         status: str = "", label: str = "", assignee: str = "",
                         search: str = "") -> QuerySet[Conversation]:
    """The inbox's views and filters over a tenant-scoped queryset; raises ConversationFilterError.

    Search matches the contact's name or number, or the text of its messages of
    the last INBOX_SEARCH_DAYS (a bound on the scan: icontains uses no index).
    """
    if view not in VIEWS:
        raise ConversationFilterError("view", f"Use one of {', '.join(VIEWS)}.")
    if view == "mine":
        if user_id is None:
            raise ConversationFilterError("view", "view=mine needs a signed-in member; with an API key use "
                                                  "assignee=<user id>.")
        queryset = queryset.filter(assignee_id=user_id)
    elif view == "unassigned":
        queryset = queryset.filter(assignee__isnull=True)
    if status and status != "all":
        statuses = status.split(",")
        if not set(statuses) <= set(Conversation.Status.values):
            raise ConversationFilterError("status", f"Use all or one of {', '.join(Conversation.Status.values)}.")
        queryset = queryset.filter(status__in=statuses)
    if label:
        queryset = queryset.filter(labels__name=label.strip().lower())
    if assignee:
        if not assignee.isdigit():
            raise ConversationFilterError("assignee", "A user id, as GET /api/v1/members lists them.")
        queryset = queryset.filter(assignee_id=int(assignee))
    search = search.strip()
    if search:
        if not SEARCH_MIN_LENGTH <= len(search) <= SEARCH_MAX_LENGTH:
            raise ConversationFilterError(
                "search", f"Search for {SEARCH_MIN_LENGTH} to {SEARCH_MAX_LENGTH} characters.")
        since = timezone.now() - timedelta(days=settings.INBOX_SEARCH_DAYS)
        texts = Message.objects.filter(conversation=OuterRef("pk"), accepted_at__gte=since, text__icontains=search)
        digits = search.lstrip("+").replace(" ", "")
        by_contact = Q(contact__name__icontains=search) | (Q(contact__wa_id__contains=digits) if digits else Q())
        queryset = queryset.filter(by_contact | Q(Exists(texts)))
    return queryset


def search_contacts(queryset: QuerySet[Contact], *, search: str) -> QuerySet[Contact]:
    search = search.strip()
    if not search:
        return queryset
    if not SEARCH_MIN_LENGTH <= len(search) <= SEARCH_MAX_LENGTH:
        raise ConversationFilterError("search", f"Search for {SEARCH_MIN_LENGTH} to {SEARCH_MAX_LENGTH} characters.")
    digits = search.lstrip("+").replace(" ", "")
    return queryset.filter(Q(name__icontains=search) | Q(wa_id__contains=digits))


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
