"""The tenant REST API for messages, conversations and webhooks. Thin: parse, call a service, shape."""

from __future__ import annotations

from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from messaging import selectors, services, webhooks_out
from messaging.models import Conversation, Message, WebhookDelivery, WebhookEndpoint
from messaging.serializers import (
    ConversationSerializer,
    MessageSerializer,
    SendMessageSerializer,
    WebhookDeliverySerializer,
    WebhookEndpointSerializer,
)
from messaging.team_api import ConversationTeamActions, acting_user
from tenants.api_base import TenantScopedViewSet

IDEMPOTENCY_HEADER = "Idempotency-Key"

# One realistic body per message type: Swagger UI offers them in "Try it out".
SEND_EXAMPLES = [
    OpenApiExample(name, request_only=True, summary=summary, value={"to": "15550001111", "type": kind, kind: body})
    for name, summary, kind, body in [
        ("text", "Text", "text", {"body": "Your order #1042 has shipped. Track it at https://example.com/t/1042"}),
        ("image", "Image with a caption", "image",
         {"url": "https://example.com/media/receipt-1042.jpg", "caption": "Your receipt"}),
        ("document", "Document (PDF)", "document",
         {"url": "https://example.com/media/invoice-1042.pdf", "filename": "invoice-1042.pdf",
          "caption": "Invoice for order #1042"}),
        ("audio", "Audio", "audio", {"url": "https://example.com/media/welcome.ogg"}),
        ("video", "Video", "video", {"url": "https://example.com/media/unboxing.mp4", "caption": "How to set it up"}),
        ("location", "Location", "location",
         {"latitude": 38.7223, "longitude": -9.1393, "name": "Acme Store", "address": "Rua Augusta 100, Lisboa"}),
        ("reaction", "Reaction to a message (our id or its provider_message_id)", "reaction",
         {"message_id": "1234", "emoji": "👍"}),
        ("template", "Template (Cloud API numbers only)", "template",
         {"name": "order_shipped", "language": {"code": "en_US"},
          "components": [{"type": "body", "parameters": [{"type": "text", "text": "#1042"}]}]}),
    ]
] + [OpenApiExample("reply", request_only=True, summary="Text quoting an earlier message (reply_to)",
                    value={"to": "15550001111", "type": "text", "text": {"body": "Yes, it ships today."},
                           "reply_to": "1234"})]


class NewestFirst(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class RecentConversationsFirst(NewestFirst):
    ordering = ("-last_message_at", "-id")


class Refused(APIException):
    def __init__(self, exc: services.SendRefused):
        self.status_code = exc.http_status
        super().__init__(detail=str(exc), code=exc.code)


class EndpointDisabled(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "endpoint_disabled"
    default_detail = 'This endpoint is disabled: enable it first (PATCH {"active": true}), then retry.'


class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """Send messages and read them back. Sends are accepted (202) and delivered by a worker."""

    queryset = Message.objects.all()
    serializer_class = MessageSerializer
    pagination_class = NewestFirst

    def safely_get_queryset(self, queryset):
        since = self.request.query_params.get("since", "")
        since_at = parse_datetime(since) if since else None
        if since and since_at is None:
            raise ValidationError({"since": "Use an ISO 8601 date-time, e.g. 2026-01-31T12:00:00Z."})
        return selectors.messages_for(
            queryset=queryset,
            status=self.request.query_params.get("status", ""),
            direction=self.request.query_params.get("direction", ""),
            contact=self.request.query_params.get("contact", ""),
            since=since_at,
        )

    @extend_schema(
        request=SendMessageSerializer,
        responses={202: MessageSerializer, 200: MessageSerializer},
        parameters=[OpenApiParameter(IDEMPOTENCY_HEADER, str, OpenApiParameter.HEADER, required=False,
                                     description="Same key and body within 24 h: the first message, 200.")],
        examples=SEND_EXAMPLES,
    )
    def create(self, request):
        serializer = SendMessageSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key = (request.headers.get(IDEMPOTENCY_HEADER) or "").strip()
        if len(key) > 255:
            raise ValidationError({IDEMPOTENCY_HEADER: "At most 255 characters."})
        try:
            accepted = services.send_message(
                tenant=self.tenant, **serializer.validated_data,
                idempotency_key=key, body_hash=services.request_hash(request.data) if key else "",
            )
        except services.SendRefused as exc:
            raise Refused(exc) from None
        # A new message is answered as saved (what its message.queued event carries); a replay is read back.
        message = accepted.message if accepted.created else \
            Message.objects.select_related("contact", "media").get(pk=accepted.message.pk)
        code = status.HTTP_202_ACCEPTED if accepted.created else status.HTTP_200_OK
        return Response(MessageSerializer(message).data, status=code)


class ConversationViewSet(ConversationTeamActions, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                         TenantScopedViewSet):
    """Conversations, newest first. The list filters: view=all|mine|unassigned, status=open|resolved|snoozed
    (comma-separated, or all), label=<name>, assignee=<user id>, search=<text> (contact or message text)."""

    queryset = Conversation.objects.all()
    serializer_class = ConversationSerializer
    pagination_class = RecentConversationsFirst

    def safely_get_queryset(self, queryset):
        if self.action == "list":
            params = self.request.query_params
            user = acting_user(self.request)
            try:
                queryset = selectors.filter_conversations(
                    queryset, view=params.get("view", "all"), user_id=user.pk if user else None,
                    status=params.get("status", ""), label=params.get("label", ""),
                    assignee=params.get("assignee", ""), search=params.get("search", ""))
            except selectors.ConversationFilterError as exc:
                raise ValidationError({exc.field: str(exc)}) from None
        return selectors.conversations_with_contacts(queryset)

    @extend_schema(responses=MessageSerializer(many=True))
    @action(detail=True, methods=["get"])
    def messages(self, request, pk=None):
        conversation = self.get_object()
        queryset = Message.objects.filter(tenant=self.tenant, conversation=conversation).select_related("contact", "media")
        paginator = NewestFirst()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(MessageSerializer(page, many=True).data)


class WebhookEndpointViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin, TenantScopedViewSet
):
    """The tenant's webhook endpoints. The signing secret is shown once, in the creation response."""

    queryset = WebhookEndpoint.objects.all()
    serializer_class = WebhookEndpointSerializer
    lookup_value_regex = r"\d+"

    def create(self, request):
        serializer = WebhookEndpointSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = webhooks_out.create_endpoint(tenant=self.tenant, **serializer.validated_data)
        return Response({**WebhookEndpointSerializer(endpoint).data, "secret": endpoint.secret},
                        status=status.HTTP_201_CREATED)

    def update(self, request, pk=None, partial=False):
        endpoint = self.get_object()
        serializer = WebhookEndpointSerializer(endpoint, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        endpoint = webhooks_out.update_endpoint(endpoint=endpoint, **serializer.validated_data)
        return Response(WebhookEndpointSerializer(endpoint).data)

    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    def perform_destroy(self, instance):
        webhooks_out.delete_endpoint(endpoint=instance)

    @extend_schema(responses=WebhookDeliverySerializer(many=True))
    @action(detail=True, methods=["get"])
    def deliveries(self, request, pk=None):
        endpoint = self.get_object()
        queryset = selectors.deliveries_of(
            WebhookDelivery.objects.filter(endpoint=endpoint), status=request.query_params.get("status", ""))
        paginator = NewestFirst()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


    @extend_schema(request=None, responses={202: inline_serializer("RetryWaiting", {
        "retried": serializers.IntegerField(help_text="Waiting retries now due (each conversation's oldest first)")})})
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Your receiver is back: its deliveries waiting out a retry backoff go now, instead of at the end of it."""
        endpoint = self.get_object()
        if not endpoint.active:
            raise EndpointDisabled()
        return Response({"retried": webhooks_out.retry_waiting_now(endpoint.pk)}, status=status.HTTP_202_ACCEPTED)


class WebhookDeliveryViewSet(mixins.RetrieveModelMixin, TenantScopedViewSet):
    queryset = WebhookDelivery.objects.select_related("endpoint")
    serializer_class = WebhookDeliverySerializer
    tenant_field = "endpoint__tenant"
    lookup_value_regex = r"\d+"

    @extend_schema(request=None, responses=WebhookDeliverySerializer)
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        delivery = webhooks_out.replay_delivery(delivery=self.get_object())
        return Response(WebhookDeliverySerializer(delivery).data, status=status.HTTP_202_ACCEPTED)
