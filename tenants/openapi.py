"""Swagger UI's "Authorize" button for API keys: the key is sent as `Authorization: Bearer <key>`."""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "API key",
            "description": "A tenant API key (wap_...), from `manage.py create_tenant` or POST /api/v1/api-keys.",
        }


class MemberSessionScheme(OpenApiAuthenticationExtension):
    """The inbox's signed-in members call the same API with their Django session (and CSRF)."""

    target_class = "tenants.authentication.MemberSessionAuthentication"
    name = "memberSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
