from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants import services
from tenants.models import Tenant
from tenants.serializers import TenantSerializer


class TenantView(APIView):
    """The calling tenant: identity, tier and limits."""

    @extend_schema(responses=TenantSerializer)
    def get(self, request):
        return Response(TenantSerializer(request.auth.tenant).data)


class StaffTenantStatusView(APIView):
    """Staff only: suspend or reactivate a tenant (by slug); answers the tenant as it now is."""

    authentication_classes = [SessionAuthentication, BasicAuthentication]
    permission_classes = [IsAdminUser]
    action = ""

    @extend_schema(request=None, responses=TenantSerializer)
    def post(self, request, slug: str):
        tenant = get_object_or_404(Tenant.objects.select_related("tier"), slug=slug)
        if self.action == "suspend":
            tenant = services.suspend_tenant(tenant=tenant)
        else:
            tenant = services.reactivate_tenant(tenant=tenant)
        return Response(TenantSerializer(tenant).data)
