from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.serializers import TenantSerializer


class TenantView(APIView):
    """The calling tenant: identity, tier and limits."""

    @extend_schema(responses=TenantSerializer)
    def get(self, request):
        return Response(TenantSerializer(request.auth.tenant).data)
