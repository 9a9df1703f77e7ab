from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from tenants.api_base import TenantScopedViewSet
from tenants.models import ApiKey
from tenants.services import issue_api_key, revoke_api_key


class ApiKeySerializer(serializers.ModelSerializer):
    revoked = serializers.BooleanField(source="is_revoked", read_only=True)

    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "revoked"]
        read_only_fields = ["prefix", "created_at", "last_used_at", "revoked_at"]


class ApiKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, TenantScopedViewSet):
    """The tenant's API keys. A new key is shown once, in the creation response; DELETE revokes."""

    queryset = ApiKey.objects.all()
    serializer_class = ApiKeySerializer

    def create(self, request):
        serializer = ApiKeySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = issue_api_key(tenant=self.tenant, name=serializer.validated_data.get("name", "api"))
        body = {**ApiKeySerializer(issued.api_key).data, "key": issued.plaintext}
        return Response(body, status=status.HTTP_201_CREATED)

    def destroy(self, request, pk=None):
        revoke_api_key(api_key=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
