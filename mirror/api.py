from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import APIException
from rest_framework.response import Response

from mirror import custom_tokens
from mirror.documents import tenant_path
from tenants.api_base import TenantScopedGenericAPIView


class FirebaseNotConfigured(APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "firebase_not_configured"


class FirebaseTokenView(TenantScopedGenericAPIView):
    """A Firebase custom token for the calling tenant's app (docs/firestore.md)."""

    class InputSerializer(serializers.Serializer):
        user = serializers.RegexField(r"^[A-Za-z0-9_.@-]{1,100}$", required=False, default="",
                                      help_text="Your app's user id; each gets its own Firebase uid.")

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        uid = serializers.CharField()
        claims = serializers.DictField()
        expires_in = serializers.IntegerField()
        project_id = serializers.CharField()
        path = serializers.CharField()

    serializer_class = InputSerializer

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        given = self.InputSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        app_user = given.validated_data["user"]
        member = getattr(request.auth, "user", None)  # a member signed in to the platform, not an API key
        if not app_user and member is not None:
            app_user = f"user-{member.pk}"
        try:
            minted = custom_tokens.mint_custom_token(tenant=self.tenant, app_user=app_user)
        except custom_tokens.CustomTokensNotConfigured as exc:
            raise FirebaseNotConfigured(str(exc)) from exc
        return Response(self.OutputSerializer({
            "token": minted.token, "uid": minted.uid, "claims": minted.claims, "expires_in": minted.expires_in,
            "project_id": settings.FIRESTORE_PROJECT, "path": tenant_path(self.tenant.pk),
        }).data)
