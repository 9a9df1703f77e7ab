"""Staff only: onboard a tenant in one call (the same service as `manage.py onboard_tenant` and the admin)."""

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.models import Tier
from tenants.services import onboard_tenant


class OnboardInput(serializers.Serializer):
    name = serializers.CharField(max_length=128)
    tier = serializers.SlugRelatedField(slug_field="name", queryset=Tier.objects.all(), required=False)
    slug = serializers.SlugField(max_length=64, required=False, allow_blank=True, default="")
    time_zone = serializers.CharField(max_length=64, required=False, default="UTC")
    inbox_username = serializers.CharField(max_length=150)
    inbox_email = serializers.EmailField(required=False, allow_blank=True, default="")
    inbox_password = serializers.CharField(required=False, allow_blank=True, default="", min_length=8,
                                           write_only=True, help_text="Generated (and shown once) if not given.")


class OnboardedTenantSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    tier = serializers.CharField()


class OnboardedInboxSerializer(serializers.Serializer):
    url = serializers.CharField()
    username = serializers.CharField()
    password = serializers.CharField(help_text='Shown once; "" when the user existed and kept theirs.')


class OnboardedSerializer(serializers.Serializer):
    tenant = OnboardedTenantSerializer()
    api_key = serializers.CharField(help_text="Shown once: only a hash is kept.")
    inbox = OnboardedInboxSerializer()
    next_steps = serializers.ListField(child=serializers.CharField())


class StaffTenantsView(APIView):
    """Staff only: onboard a tenant (tenant, first API key, inbox user who owns it)."""

    authentication_classes = [SessionAuthentication, BasicAuthentication]
    permission_classes = [IsAdminUser]

    @extend_schema(
        request=OnboardInput, responses={201: OnboardedSerializer},
        examples=[OpenApiExample("Onboard Acme", request_only=True, value={
            "name": "Acme Support", "tier": "standard", "inbox_username": "ana", "inbox_email": "ana@acme.example"})],
    )
    def post(self, request):
        data = OnboardInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        tier = v.get("tier") or Tier.objects.filter(name="standard").first() or Tier.objects.order_by("pk").first()
        if tier is None:
            raise ValidationError({"tier": "No tier exists yet: run `manage.py migrate` (it creates the default tiers)."})
        try:
            done = onboard_tenant(name=v["name"], tier=tier, slug=v["slug"], time_zone=v["time_zone"],
                                  inbox_username=v["inbox_username"], inbox_email=v["inbox_email"],
                                  inbox_password=v["inbox_password"])
        except DjangoValidationError as exc:
            raise ValidationError(exc.message_dict) from None
        base = settings.PUBLIC_BASE_URL
        body = {
            "tenant": {"id": done.tenant.pk, "slug": done.tenant.slug, "name": done.tenant.name, "tier": tier.name},
            "api_key": done.api_key.plaintext,
            "inbox": {"url": f"{base}/inbox/", "username": done.user.get_username(), "password": done.password},
            "next_steps": done.next_steps(base),
        }
        response = Response(OnboardedSerializer(body).data, status=status.HTTP_201_CREATED)
        response["Cache-Control"] = "no-store"
        return response
