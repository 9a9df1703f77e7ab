from rest_framework import serializers

from tenants.models import Tenant, Tier


class TierLimitsSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tier
        fields = [
            "name",
            "tenants_per_slot",
            "max_slots",
            "send_queue",
            "api_rate_limit_per_minute",
            "messages_per_second",
            "monthly_price",
        ]


class TenantSerializer(serializers.ModelSerializer):
    tier = serializers.SlugRelatedField(slug_field="name", read_only=True)
    limits = TierLimitsSerializer(source="tier", read_only=True)

    class Meta:
        model = Tenant
        fields = ["id", "name", "slug", "tier", "status", "time_zone", "limits", "created_at"]
