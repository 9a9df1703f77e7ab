"""The support team's API: assignment, status, labels, notes, canned replies, contacts, members.

Thin, like messaging.api: parse, authorise, call one service, shape. Every
view is tenant-scoped (TenantScopedMixin). Notes are for signed-in members
only: an API key gets 403 on them (docs/inbox.md says why).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from messaging import presence, selectors, services
from messaging.models import CannedReply, Contact, ConversationActivity, InboxSettings, Label, Note
from messaging.team_serializers import (
    ActivitySerializer,
    AssignSerializer,
    CannedReplySerializer,
    ContactDetailSerializer,
    ContactUpdateSerializer,
    ConversationLabelsSerializer,
    InboxSettingsSerializer,
    LabelSerializer,
    MemberSerializer,
    NoteSerializer,
    SnoozeSerializer,
)
from tenants.api_base import TenantScopedGenericAPIView, TenantScopedViewSet
from tenants.authentication import MemberAccess
from tenants.models import Membership


def refused(exc: DjangoValidationError) -> ValidationError:
    return ValidationError(exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages})


def validated(serializer_class, request, **options) -> dict:
    serializer = serializer_class(data=request.data, **options)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def call_service(fn, **kwargs):
    """`fn(**kwargs)`, a refusal of the service answered as a 400 naming the same fields."""
    try:
        return fn(**kwargs)
    except DjangoValidationError as exc:
        raise refused(exc) from None


def acting_user(request):
    """The signed-in person behind the request, or None for an API key."""
    return request.auth.user if isinstance(request.auth, MemberAccess) else None


class MembersOnly(PermissionDenied):
    default_detail = ("Private notes are for the tenant's signed-in members (the inbox); "
                      "API keys can neither read nor write them.")
    default_code = "members_only"


def require_member(request) -> None:
    if acting_user(request) is None:
        raise MembersOnly()


class ConversationTeamActions:
    """Detail actions of /api/v1/conversations/{id}: mixed into messaging.api.ConversationViewSet."""

    def _answer(self, conversation):
        return Response(self.get_serializer(self.get_queryset().get(pk=conversation.pk)).data)

    def _call(self, fn, **kwargs):
        return self._answer(call_service(fn, conversation=self.get_object(), by=acting_user(self.request), **kwargs))

    @extend_schema(request=AssignSerializer)
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        return self._call(services.assign_conversation, assignee_id=validated(AssignSerializer, request)["assignee"])

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        return self._call(services.resolve_conversation)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def reopen(self, request, pk=None):
        return self._call(services.reopen_conversation)

    @extend_schema(request=SnoozeSerializer)
    @action(detail=True, methods=["post"])
    def snooze(self, request, pk=None):
        return self._call(services.snooze_conversation, until=validated(SnoozeSerializer, request)["until"])

    @extend_schema(request=ConversationLabelsSerializer)
    @action(detail=True, methods=["put"], url_path="labels")
    def set_labels(self, request, pk=None):
        return self._call(services.set_conversation_labels,
                          names=validated(ConversationLabelsSerializer, request)["labels"])

    @extend_schema(request=NoteSerializer, responses=NoteSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def notes(self, request, pk=None):
        require_member(request)
        conversation = self.get_object()
        if request.method == "POST":
            note = call_service(services.create_note, conversation=conversation, author=acting_user(request),
                                body=validated(NoteSerializer, request)["body"])
            return Response(NoteSerializer(note).data, status=status.HTTP_201_CREATED)
        notes = Note.objects.filter(conversation=conversation).select_related("author").order_by("-pk")[:200]
        return Response(NoteSerializer(reversed(list(notes)), many=True).data)

    @extend_schema(responses=ActivitySerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)  # the latest 100, a plain list (as the schema says)
    def activity(self, request, pk=None):
        conversation = self.get_object()
        rows = ConversationActivity.objects.filter(conversation=conversation).select_related("actor")[:100]
        return Response(ActivitySerializer(rows, many=True).data)


class NoteViewSet(mixins.DestroyModelMixin, TenantScopedViewSet):
    queryset = Note.objects.all()
    serializer_class = NoteSerializer
    lookup_value_regex = r"\d+"

    def destroy(self, request, pk=None):
        require_member(request)
        services.delete_note(note=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class ContactPages(CursorPagination):
    ordering = "-id"
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class ContactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """GET ?search=<name or number>; PATCH {name, attributes}."""

    queryset = Contact.objects.all()
    serializer_class = ContactDetailSerializer
    lookup_value_regex = r"\d+"
    pagination_class = ContactPages

    def safely_get_queryset(self, queryset):
        try:
            return selectors.search_contacts(queryset, search=self.request.query_params.get("search", ""))
        except selectors.ConversationFilterError as exc:
            raise ValidationError({exc.field: str(exc)}) from None

    @extend_schema(request=ContactUpdateSerializer, responses=ContactDetailSerializer)
    def partial_update(self, request, pk=None):
        contact = self.get_object()
        contact = call_service(services.update_contact, contact=contact, **validated(ContactUpdateSerializer, request))
        return Response(ContactDetailSerializer(contact).data)


class LabelViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    queryset = Label.objects.all()
    serializer_class = LabelSerializer
    lookup_value_regex = r"\d+"
    pagination_class = None

    def create(self, request):
        label = call_service(services.create_label, tenant=self.tenant, **validated(LabelSerializer, request))
        return Response(LabelSerializer(label).data, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        services.delete_label(label=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class CannedReplyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    queryset = CannedReply.objects.all()
    serializer_class = CannedReplySerializer
    lookup_value_regex = r"\d+"
    pagination_class = None

    def create(self, request):
        reply = call_service(services.create_canned_reply, tenant=self.tenant,
                             **validated(CannedReplySerializer, request))
        return Response(CannedReplySerializer(reply).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        reply = self.get_object()
        reply = call_service(services.update_canned_reply, reply=reply,
                             **validated(CannedReplySerializer, request, partial=True))
        return Response(CannedReplySerializer(reply).data)

    def destroy(self, request, pk=None):
        services.delete_canned_reply(reply=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)


class MembersView(TenantScopedGenericAPIView):
    """GET: the tenant's people, with their presence in the inbox (online, away, offline)."""

    queryset = Membership.objects.all()
    serializer_class = MemberSerializer

    @extend_schema(responses=MemberSerializer(many=True))
    def get(self, request):
        memberships = self.get_queryset().select_related("user").filter(user__is_active=True).order_by("user_id")
        now = presence.presence_of(tenant_id=self.tenant.pk)
        return Response([
            {"id": m.user_id, "username": m.user.get_username(),
             "name": m.user.get_full_name() or m.user.get_username(), "role": m.role,
             "presence": now.get(m.user_id, presence.OFFLINE)}
            for m in memberships
        ])


class InboxSettingsView(TenantScopedGenericAPIView):
    """GET/PATCH the tenant's inbox settings: {"auto_assign": bool}."""

    queryset = InboxSettings.objects.all()
    serializer_class = InboxSettingsSerializer

    def get(self, request):
        return Response(InboxSettingsSerializer(services.inbox_settings(tenant=self.tenant)).data)

    def patch(self, request):
        row = services.update_inbox_settings(tenant=self.tenant, **validated(InboxSettingsSerializer, request))
        return Response(InboxSettingsSerializer(row).data)
