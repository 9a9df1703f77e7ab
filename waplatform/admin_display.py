"""Long values in admin tables: cut to a width, the whole value in a title (shown on hover).

A message text, a webhook URL with its token or a JSON list in one unbroken line
widens a changelist past the window, and the operator scrolls the whole page
sideways to reach the other columns.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html
from django.utils.text import Truncator


def clip(value, chars: int = 40) -> str:
    if value is None or value == "":
        return "—"
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else str(value)
    if len(text) <= chars:
        return text
    return format_html('<span class="clipped" title="{}">{}</span>', text, Truncator(text).chars(chars))


def clipped(field: str, chars: int = 40, *, description: str | None = None):
    """A list_display column showing `field` clipped to `chars` characters."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def column(obj):
        return clip(getattr(obj, field), chars)

    column.__name__ = f"{field}_clipped"
    return column
