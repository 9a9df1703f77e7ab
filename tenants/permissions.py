from rest_framework import permissions
from rest_framework.exceptions import PermissionDenied

from tenants.authentication import MemberAccess
from tenants.models import ApiKey

TENANT_ACCESS = (ApiKey, MemberAccess)


class TenantSuspended(PermissionDenied):
    default_detail = "This tenant is suspended; contact the platform operator to reactivate it."
    default_code = "tenant_suspended"


class IsTenantMember(permissions.BasePermission):
    """Fail closed: only a request acting for a tenant (its API key, or a signed-in member) gets through.

    A suspended tenant may still read, but changes nothing.
    """

    def has_permission(self, request, view) -> bool:
        access = request.auth
        if not isinstance(access, TENANT_ACCESS):
            return False
        if not access.tenant.is_active and request.method not in permissions.SAFE_METHODS:
            raise TenantSuspended()
        return True

