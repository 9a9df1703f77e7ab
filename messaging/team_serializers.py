"""API shapes of the support team's side: assignment, status, labels, notes, canned replies, contacts."""

from __future__ import annotations

from rest_framework import serializers

from messaging.models import CannedReply, Contact, ConversationActivity, InboxSettings, Label, Note
from messaging.services.activity import person


class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()


class ContactDetailSerializer(serializers.ModelSerializer):
    sandbox = serializers.BooleanField(source="is_sandbox", read_only=True,
                                       help_text="An echo number of the sandbox bridge, not a real phone.")

    class Meta:
        model = Contact
        fields = ["id", "wa_id", "name", "attributes", "sandbox", "created_at"]
        read_only_fields = ["id", "wa_id", "sandbox", "created_at"]


class ContactUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255, required=False, allow_blank=True)
    attributes = serializers.JSONField(required=False)


class AssignSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(allow_null=True, help_text="A member's user id; null unassigns.")


class SnoozeSerializer(serializers.Serializer):
    until = serializers.DateTimeField(help_text="ISO 8601, e.g. 2026-01-31T09:00:00Z.")


class ConversationLabelsSerializer(serializers.Serializer):
    labels = serializers.ListField(child=serializers.CharField(max_length=64), allow_empty=True)


class LabelSerializer(serializers.ModelSerializer):
    class Meta:
        model = Label
        fields = ["id", "name", "color", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators = []  # uniqueness is the service's (it knows the tenant)


class NoteSerializer(serializers.ModelSerializer):
    author = serializers.SerializerMethodField()

    class Meta:
        model = Note
        fields = ["id", "conversation_id", "author", "body", "created_at"]
        read_only_fields = ["id", "conversation_id", "author", "created_at"]

    def get_author(self, note: Note) -> dict | None:
        return person(note.author)


class CannedReplySerializer(serializers.ModelSerializer):
    class Meta:
        model = CannedReply
        fields = ["id", "short_code", "content", "created_at", "updated_at"]
        read_only_fields = ["id", "created_at", "updated_at"]
        validators = []


class ActivitySerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = ConversationActivity
        fields = ["id", "kind", "actor", "data", "created_at"]

    def get_actor(self, activity: ConversationActivity) -> dict | None:
        return person(activity.actor)


class InboxSettingsSerializer(serializers.ModelSerializer):
    auto_assign = serializers.BooleanField(
        help_text="Give new and reopened unassigned conversations round-robin to online members.")

    class Meta:
        model = InboxSettings
        fields = ["auto_assign"]


class MemberSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()
    presence = serializers.ChoiceField(choices=["online", "away", "offline"])
