"""API shapes. Validation of the send body lives here; the writes are in services."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import serializers

from messaging.models import Conversation, Message, WebhookDelivery, WebhookEndpoint
from messaging.services import message_representation, normalise_recipient
from messaging.services.activity import person
from messaging.webhooks_out import InvalidWebhookUrl, check_url
from waplatform import egress
from waplatform.events import EVENT_TYPES
from waplatform.serializer_fields import StrictCharField

SEND_TYPES = ["text", "image", "document", "audio", "video", "location", "reaction", "template"]
MEDIA_TYPES = ("image", "document", "audio", "video")

CAPTION_MAX = 1024


def _http_url(value: str, field: str) -> str:
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise serializers.ValidationError({field: "Media must be given as an http(s) URL."})
    return value


class _ObjectWithHint(serializers.Serializer):
    """A nested object given as a bare string says how to wrap it (`"text": "hi"` → `{"body": "hi"}`)."""

    wrap_as = ""

    def to_internal_value(self, data):
        if isinstance(data, str):
            example = json.dumps({self.field_name: {self.wrap_as: data}}, ensure_ascii=False)
            raise serializers.ValidationError(
                f"{self.field_name} is an object, not a string: send {example}.", code="not_an_object")
        return super().to_internal_value(data)


class TextSerializer(_ObjectWithHint):
    wrap_as = "body"
    body = StrictCharField(
        allow_blank=True, trim_whitespace=False, example="Hello",
        error_messages={"required": "text.body is required."},
    )

    def validate_body(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("The text must not be empty.")
        if len(value) > settings.MESSAGE_MAX_TEXT_LENGTH:
            raise serializers.ValidationError(
                f"The text is {len(value)} characters; WhatsApp allows at most {settings.MESSAGE_MAX_TEXT_LENGTH}.")
        return value


class MediaSerializer(_ObjectWithHint):
    wrap_as = "url"

    url = serializers.CharField(max_length=2000, required=False)
    link = serializers.CharField(max_length=2000, required=False)  # the Cloud API's name for it
    media_id = serializers.IntegerField(required=False, min_value=1, help_text="From POST /api/v1/media.")
    caption = StrictCharField(max_length=CAPTION_MAX, required=False, allow_blank=True)
    filename = serializers.CharField(max_length=255, required=False, allow_blank=True)

    def validate(self, attrs):
        url = attrs.get("url") or attrs.get("link") or ""
        if attrs.get("media_id"):
            if url:
                raise serializers.ValidationError({"media_id": "Give either media_id or a url, not both."})
            return {"media_id": attrs["media_id"], "caption": attrs.get("caption", ""),
                    "filename": attrs.get("filename", "")}
        if not url:
            raise serializers.ValidationError(
                {"url": "A media URL (url or link) or a media_id from POST /api/v1/media is required."})
        field = "url" if attrs.get("url") else "link"
        _http_url(url, field)
        # The bridge (or Meta) fetches the link; on a self-hosted bridge that is our network.
        try:
            egress.check_url(url)
        except egress.EgressRefused as exc:
            raise serializers.ValidationError({field: f"The media {field} is refused: {exc}"}) from None
        return {"url": url, "caption": attrs.get("caption", ""), "filename": attrs.get("filename", "")}


class LocationSerializer(serializers.Serializer):
    latitude = serializers.FloatField(min_value=-90, max_value=90)
    longitude = serializers.FloatField(min_value=-180, max_value=180)
    name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    address = serializers.CharField(max_length=255, required=False, allow_blank=True)


class ReactionSerializer(serializers.Serializer):
    message_id = serializers.CharField(max_length=255)
    emoji = serializers.CharField(max_length=16, allow_blank=True)


class TemplateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=512)
    language = serializers.JSONField()
    components = serializers.ListField(child=serializers.JSONField(), required=False)


class SendMessageSerializer(serializers.Serializer):
    to = StrictCharField(max_length=128, trim_whitespace=False, example="16505551234")
    type = serializers.ChoiceField(
        choices=SEND_TYPES, default="text",
        error_messages={"invalid_choice": f'Unsupported message type "{{input}}"; use one of {", ".join(SEND_TYPES)}.'},
    )
    text = TextSerializer(required=False)
    image = MediaSerializer(required=False)
    document = MediaSerializer(required=False)
    audio = MediaSerializer(required=False)
    video = MediaSerializer(required=False)
    location = LocationSerializer(required=False)
    reaction = ReactionSerializer(required=False)
    template = TemplateSerializer(required=False)
    reply_to = serializers.CharField(max_length=255, required=False, allow_blank=True)

    def validate_to(self, value: str) -> str:
        try:
            return normalise_recipient(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate(self, attrs):
        kind = attrs["type"]
        content = attrs.get(kind)
        if content is None:
            raise serializers.ValidationError({kind: f'A "{kind}" message needs a "{kind}" object.'})
        text, payload = "", {}
        if kind == "text":
            text = content["body"]
        elif kind in MEDIA_TYPES:
            text = content["caption"]
            if content.get("media_id"):
                payload = {"media_id": content["media_id"], "filename": content["filename"]}
            else:
                payload = {"url": content["url"], "filename": content["filename"]}
        elif kind == "location":
            payload = {k: content[k] for k in ("latitude", "longitude", "name", "address") if k in content}
        elif kind == "reaction":
            payload = dict(content)
        elif kind == "template":
            template = {"name": content["name"], "language": content["language"]}
            if content.get("components") is not None:
                template["components"] = content["components"]
            payload = {"template": template}
            text = content["name"]
        return {"to": attrs["to"], "type": kind, "text": text, "payload": payload,
                "reply_to": attrs.get("reply_to", "")}


class ContactSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    wa_id = serializers.CharField()
    name = serializers.CharField()


class MessageErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text='e.g. "131026" from Meta, "expired", "rejected"')
    reason = serializers.CharField(help_text="What went wrong, in words")


class MessagePricingSerializer(serializers.Serializer):
    category = serializers.CharField()
    pricing_model = serializers.CharField()
    type = serializers.CharField()


class MessageSerializer(serializers.ModelSerializer):
    """Read-only: the fields below describe the answer for the API schema; the answer itself is
    messaging.services.message_representation, the shape events and webhooks carry too."""

    contact = ContactSerializer(read_only=True)
    error = MessageErrorSerializer(read_only=True, allow_null=True, help_text="Set when the message failed")
    pricing = MessagePricingSerializer(read_only=True, allow_null=True, help_text="From Cloud API statuses")
    media = serializers.DictField(
        read_only=True, allow_null=True,
        help_text="{id, status (pending|stored|failed|deleted), reason, kind, content_type, size, sha256, filename, "
                  "url, thumbnail_url, expires_at} for media messages; url is a signed, expiring link")

    class Meta:
        model = Message
        fields = [
            "id", "conversation_id", "contact", "direction", "type", "text", "payload", "reply_to", "status",
            "provider_message_id", "error", "pricing", "attempts", "accepted_at", "sent_at", "delivered_at",
            "read_at", "failed_at", "media",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Message) -> dict:
        return message_representation(instance)


class ConversationContactSerializer(ContactSerializer):
    sandbox = serializers.BooleanField(source="is_sandbox", help_text="A sandbox echo number, not a real phone.")


class ConversationSerializer(serializers.ModelSerializer):
    contact = ConversationContactSerializer(read_only=True)
    last_message = serializers.SerializerMethodField()
    assignee = serializers.SerializerMethodField(help_text="The member who answers it: {id, username, name} or null.")
    labels = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = ["id", "contact", "created_at", "last_message_at", "last_inbound_at", "unread_count", "last_message",
                  "status", "snoozed_until", "assignee", "labels"]
        read_only_fields = fields

    def get_assignee(self, conversation) -> dict | None:
        return person(conversation.assignee)

    def get_labels(self, conversation) -> list[str]:
        return sorted(label.name for label in conversation.labels.all())

    def get_last_message(self, conversation) -> dict | None:
        """The preview for a conversation list (annotated by selectors.conversations_with_contacts)."""
        direction = getattr(conversation, "last_message_direction", None)
        if direction is None:
            return None
        return {"direction": direction, "type": conversation.last_message_type, "text": conversation.last_message_text}


class WebhookEndpointSerializer(serializers.ModelSerializer):
    event_types = serializers.ListField(child=serializers.CharField(max_length=64), required=False, allow_empty=False)
    secret = serializers.CharField(write_only=True, required=False, min_length=16, max_length=255)

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "url", "event_types", "active", "description", "secret", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_url(self, value: str) -> str:
        try:
            return check_url(value)
        except InvalidWebhookUrl as exc:
            raise serializers.ValidationError(str(exc)) from None

    def validate_event_types(self, value: list[str]) -> list[str]:
        bad = [t for t in value if t != "*" and t not in EVENT_TYPES]
        if bad:
            raise serializers.ValidationError(
                f"Unknown event type{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))}; "
                f'use "*" (all) or any of: {", ".join(EVENT_TYPES)}.', code="unknown_event_type")
        return value


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id", "endpoint_id", "event_id", "event_type", "status", "attempts", "next_attempt_at",
            "last_attempt_at", "last_status_code", "last_error", "created_at", "completed_at", "replayed_at",
            "payload",
        ]
        read_only_fields = fields
