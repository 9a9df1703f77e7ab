from dataclasses import dataclass

from rest_framework import authentication, exceptions

from tenants.models import ApiKey, Tenant
from tenants.services import authenticate_api_key


@dataclass
class ApiClient:
    """The caller behind an API key: a tenant's integration, never a Django user."""

    api_key: ApiKey

    is_authenticated = True
    is_staff = False
    is_anonymous = False

    @property
    def tenant(self) -> Tenant:
        return self.api_key.tenant

    def __str__(self) -> str:
        return f"api-key {self.api_key.prefix} of {self.api_key.tenant.slug}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != self.keyword.lower() or not token.strip():
            raise exceptions.AuthenticationFailed("Use the header 'Authorization: Bearer <api key>'.")
        api_key = authenticate_api_key(token.strip())
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return ApiClient(api_key), api_key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'
