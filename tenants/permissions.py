from rest_framework import permissions
from rest_framework.exceptions import PermissionDenied

from tenants.models import ApiKey


class TenantSuspended(PermissionDenied):
    default_detail = "This tenant is suspended; contact the platform operator to reactivate it."
    default_code = "tenant_suspended"


class IsTenantMember(permissions.BasePermission):
    """Fail closed: only a request that carries a live tenant's API key gets through.

    A suspended tenant may still read, but changes nothing.
    """

    def has_permission(self, request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return False
        if not api_key.tenant.is_active and request.method not in permissions.SAFE_METHODS:
            raise TenantSuspended()
        return True


class IsStaff(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and getattr(user, "is_staff", False) and user.is_authenticated)
