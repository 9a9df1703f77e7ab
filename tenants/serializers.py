from rest_framework import serializers

from tenants.models import Tenant, Tier

# Unbound field instances only format values (no request, no parent): safe to share.
_DATETIME = serializers.DateTimeField()
_PRICE = serializers.DecimalField(max_digits=10, decimal_places=2)


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

    def to_representation(self, tenant: Tenant) -> dict:
        # By hand: a ModelSerializer derives its fields from the model again for every
        # instance (~1 ms here), more than the rest of GET /api/v1/tenant together. The
        # fields above still describe the answer (OpenAPI); tests/tenants/test_key_cache.py
        # checks that both give the same body.
        tier = tenant.tier
        return {
            "id": tenant.pk, "name": tenant.name, "slug": tenant.slug, "tier": tier.name, "status": tenant.status,
            "time_zone": tenant.time_zone,
            "limits": {
                "name": tier.name, "tenants_per_slot": tier.tenants_per_slot, "max_slots": tier.max_slots,
                "send_queue": tier.send_queue, "api_rate_limit_per_minute": tier.api_rate_limit_per_minute,
                "messages_per_second": tier.messages_per_second,
                "monthly_price": _PRICE.to_representation(tier.monthly_price),
            },
            "created_at": _DATETIME.to_representation(tenant.created_at),
        }
