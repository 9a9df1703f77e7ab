"""The base of every tenant API view: it cannot return another tenant's rows.

Subclasses never override get_queryset/get_object (enforced at class
creation, as PostHog's TeamAndOrgViewSetMixin does); they implement
`safely_get_queryset(queryset)` on a queryset already filtered to the
caller's tenant. A request without a tenant fails closed.
"""

from rest_framework import generics, viewsets
from rest_framework.exceptions import NotAuthenticated

from tenants.models import Tenant
from tenants.permissions import TENANT_ACCESS

_PROTECTED = ("get_queryset", "get_object")


class TenantScopedMixin:
    tenant_field = "tenant"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in _PROTECTED:
            if name in cls.__dict__:
                raise TypeError(f"{cls.__name__} must not override {name}; implement safely_get_queryset instead.")

    @property
    def tenant(self) -> Tenant:
        access = getattr(self.request, "auth", None)
        if not isinstance(access, TENANT_ACCESS):
            raise NotAuthenticated("An API key is required.")
        return access.tenant

    def safely_get_queryset(self, queryset):
        return queryset

    def get_queryset(self):
        queryset = super().get_queryset().filter(**{self.tenant_field: self.tenant})
        return self.safely_get_queryset(queryset)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "tenant": self.tenant}


class TenantScopedViewSet(TenantScopedMixin, viewsets.GenericViewSet):
    pass


class TenantScopedGenericAPIView(TenantScopedMixin, generics.GenericAPIView):
    pass
