"""API shapes. Validation of the send body lives here; the writes are in services."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import serializers

from messaging.models import Conversation, Message, WebhookDelivery, WebhookEndpoint
from messaging.services import message_representation, normalise_recipient
from messaging.webhooks_out import InvalidWebhookUrl, check_url
from waplatform import egress
from waplatform.serializer_fields import StrictCharField

SEND_TYPES = ["text", "image", "document", "audio", "video", "location", "reaction", "template"]
MEDIA_TYPES = ("image", "document", "audio", "video")
EVENT_TYPE = re.compile(r"^(\*|[a-z_]+(\.[a-z_]+)+)$")
CAPTION_MAX = 1024


def _http_url(value: str, field: str) -> str:
    parts = urlsplit(value or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise serializers.ValidationError({field: "Media must be given as an http(s) URL."})
    return value


class TextSerializer(serializers.Serializer):
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


class MediaSerializer(serializers.Serializer):
    url = serializers.CharField(max_length=2000, required=False)
    link = serializers.CharField(max_length=2000, required=False)  # the Cloud API's name for it
    caption = StrictCharField(max_length=CAPTION_MAX, required=False, allow_blank=True)
    filename = serializers.CharField(max_length=255, required=False, allow_blank=True)

    def validate(self, attrs):
        url = attrs.get("url") or attrs.get("link") or ""
        if not url:
            raise serializers.ValidationError({"url": "A media URL is required."})
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


class MessageSerializer(serializers.ModelSerializer):
    """Read-only: the fields below describe the answer for the API schema; the answer itself is
    messaging.services.message_representation, the shape events and webhooks carry too."""

    contact = ContactSerializer(read_only=True)
    error = serializers.DictField(read_only=True, allow_null=True, help_text="{code, reason} when failed")
    pricing = serializers.DictField(read_only=True, allow_null=True,
                                    help_text="{category, pricing_model, type} from Cloud API statuses")

    class Meta:
        model = Message
        fields = [
            "id", "conversation_id", "contact", "direction", "type", "text", "payload", "reply_to", "status",
            "provider_message_id", "error", "pricing", "attempts", "accepted_at", "sent_at", "delivered_at",
            "read_at", "failed_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance: Message) -> dict:
        return message_representation(instance)


class ConversationSerializer(serializers.ModelSerializer):
    contact = ContactSerializer(read_only=True)
    last_message = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = ["id", "contact", "created_at", "last_message_at", "last_inbound_at", "unread_count", "last_message"]
        read_only_fields = fields

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
        bad = [t for t in value if not EVENT_TYPE.match(t)]
        if bad:
            raise serializers.ValidationError(f'Event types look like "message.received" or "*"; not {bad}.')
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
