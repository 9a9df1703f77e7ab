"""How the public API describes itself (drf-spectacular): tags, summaries, what is public.

Explicit `extend_schema(summary=..., tags=...)` on a view always wins; what is here is the
fallback, so an endpoint added without them still lands under a sensible tag with a summary
instead of an anonymous line in Swagger UI.
"""

from __future__ import annotations

from drf_spectacular.openapi import AutoSchema

PUBLIC_PREFIX = "/api/v1/"

# The first path segment under /api/v1/ → the tag it is listed under.
TAG_BY_SEGMENT = {
    "tenant": "tenant",
    "api-keys": "tenant",
    "usage": "tenant",
    "firebase": "tenant",
    "session": "session",
    "messages": "messages",
    "conversations": "conversations",
    "webhooks": "webhooks",
    "agents": "agents",
    "media": "media",
    "staff": "staff",
    # the inbox's team features (docs/inbox.md) are about conversations
    "contacts": "conversations",
    "notes": "conversations",
    "members": "conversations",
    "canned-replies": "conversations",
    "labels": "conversations",
    "inbox": "conversations",
    "numbers": "session",
    "ws-ticket": "tenant",
}

_ACTION_VERBS = {
    "list": "List {plural}",
    "retrieve": "Get {a} {singular}",
    "create": "Create {a} {singular}",
    "update": "Replace {a} {singular}",
    "partial_update": "Update {a} {singular}",
    "destroy": "Delete {a} {singular}",
}

# Operations whose handler has no docstring to take a summary from: (method, path) → summary.
SUMMARIES = {
    ("POST", "/api/v1/messages"): "Send a message",
    ("POST", "/api/v1/api-keys"): "Issue an API key (shown once)",
    ("DELETE", "/api/v1/api-keys/{id}"): "Revoke an API key",
    ("GET", "/api/v1/session"): "Read the WhatsApp session (and its QR code)",
    ("GET", "/api/v1/session/qr.png"): "The QR code to scan, as a PNG image",
    ("POST", "/api/v1/session/start"): "Start the WhatsApp session",
    ("POST", "/api/v1/session/stop"): "Stop the session (stay linked)",
    ("POST", "/api/v1/session/logout"): "Log the session out (unlink the phone)",
    ("GET", "/api/v1/conversations/{id}/messages"): "List a conversation's messages",
    ("GET", "/api/v1/conversations/{id}/agent"): "Read a conversation's agent state",
    ("POST", "/api/v1/conversations/{id}/handoff"): "Hand a conversation to a human",
    ("POST", "/api/v1/conversations/{id}/resume"): "Resume the agent on a conversation",
    ("GET", "/api/v1/agents/config"): "Read the tenant's LLM configuration",
    ("PATCH", "/api/v1/agents/config"): "Set the tenant's LLM endpoint and key",
    ("GET", "/api/v1/webhooks/{id}/deliveries"): "List an endpoint's deliveries",
    ("POST", "/api/v1/webhooks/deliveries/{id}/replay"): "Replay a delivery",
    ("GET", "/api/v1/usage"): "Month-to-date cost and usage",
    ("GET", "/api/v1/tenant"): "The calling tenant: identity, tier and limits",
    ("GET", "/api/v1/staff/slots"): "List pools and their slots (staff)",
    ("POST", "/api/v1/staff/slots"): "Register a bridge server as a slot (staff)",
    ("POST", "/api/v1/staff/tenants"): "Onboard a tenant: key and inbox user (staff)",
}


def public_endpoints_only(endpoints, **kwargs):
    """Preprocessing hook: only /api/v1/ is public; the inbox's own endpoints stay private."""
    return [endpoint for endpoint in endpoints if endpoint[0].startswith(PUBLIC_PREFIX)]


def _first_line(doc: str | None) -> str:
    line = (doc or "").strip().splitlines()[0] if (doc or "").strip() else ""
    return line.rstrip(".")


class PlatformAutoSchema(AutoSchema):
    def get_tags(self) -> list[str]:
        segment = self.path[len(PUBLIC_PREFIX):].split("/", 1)[0] if self.path.startswith(PUBLIC_PREFIX) else ""
        tag = TAG_BY_SEGMENT.get(segment)
        return [tag] if tag else super().get_tags()

    def get_summary(self) -> str | None:
        known = SUMMARIES.get((self.method.upper(), self.path))
        if known:
            return known
        action = getattr(self.view, "action", None)
        queryset = getattr(self.view, "queryset", None)
        if action in _ACTION_VERBS and queryset is not None:
            meta = queryset.model._meta
            singular = str(meta.verbose_name)
            return _ACTION_VERBS[action].format(
                singular=singular, plural=str(meta.verbose_name_plural), a="an" if singular[0] in "aeiou" else "a")
        handler = getattr(self.view, action or self.method.lower(), None)
        summary = _first_line(getattr(handler, "__doc__", None))
        if not summary and action is None:  # an APIView's class docstring describes its one resource
            summary = _first_line(self.view.__class__.__doc__)
        return summary or f"{self.method.upper()} {self.path}"
