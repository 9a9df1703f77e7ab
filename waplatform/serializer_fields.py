"""Serializer fields that take input for what it is, not what it can be turned into."""

from rest_framework import serializers


class StrictCharField(serializers.CharField):
    """A CharField that refuses JSON numbers and booleans instead of quietly calling str() on them:
    a phone number sent as 16505551234 has already lost its leading zeros or '+' in some client."""

    default_error_messages = {"not_a_string": 'Send this as a JSON string (in quotes), e.g. "{example}".'}

    def __init__(self, *, example: str = "text", **kwargs) -> None:
        self.example = example
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string", example=self.example)
        return super().to_internal_value(data)
