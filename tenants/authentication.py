from dataclasses import dataclass

from rest_framework import authentication, exceptions

from tenants.auth_failures import API_KEY, LOGIN, client_address, record_failure, retry_after
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
            address = client_address(request.META)
            # A valid key passes even from a throttled address: keys are not guessable, and
            # integrations behind one NAT must not be locked out by a neighbour's stale key.
            if (wait := retry_after(API_KEY, address)) is not None:
                raise exceptions.Throttled(wait=wait, detail="Too many unknown or revoked API keys from your address; "
                                                             "check the key your client sends.")
            record_failure(API_KEY, address)
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return ApiClient(api_key), api_key

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class ThrottledBasicAuthentication(authentication.BasicAuthentication):
    """HTTP Basic (the staff API) under the sign-in forms' per-address limit: a password
    guessed here is a password guessed. Failures are counted by the user_login_failed receiver."""

    def authenticate_credentials(self, userid, password, request=None):
        wait = retry_after(LOGIN, client_address(request.META)) if request is not None else None
        if wait is not None:
            raise exceptions.Throttled(wait=wait, detail="Too many failed sign-ins from your address.")
        return super().authenticate_credentials(userid, password, request)


@dataclass
class MemberAccess:
    """A signed-in person acting for one tenant (the live inbox): a member, or staff who chose it."""

    user: object
    tenant: Tenant


def member_tenant(user, slug: str | None) -> Tenant | None:
    """The tenant a signed-in user acts for: the one named (if allowed), else their only one."""
    if slug:
        tenants = Tenant.objects.select_related("tier").filter(slug=slug)
        if not user.is_staff:
            tenants = tenants.filter(memberships__user=user)
        return tenants.first()
    memberships = list(user.memberships.select_related("tenant__tier")[:2])
    return memberships[0].tenant if len(memberships) == 1 else None


class MemberSessionAuthentication(authentication.SessionAuthentication):
    """The Django session of a tenant member (CSRF enforced, as for any session)."""

    def authenticate(self, request):
        result = super().authenticate(request)
        if result is None:
            return None
        user, _ = result
        slug = request.headers.get("X-Tenant") or request.query_params.get("tenant")
        tenant = member_tenant(user, slug)
        if tenant is None:
            raise exceptions.PermissionDenied(
                "Choose a tenant you belong to with the X-Tenant header (its slug)."
                if slug or user.is_staff or user.memberships.exists()
                else "This account is not a member of any tenant."
            )
        return user, MemberAccess(user=user, tenant=tenant)
