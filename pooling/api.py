from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.exceptions import APIException
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.views import APIView

from pooling import services
from pooling.models import Slot
from pooling.selectors import pool_statuses
from tenants.models import Tier


class SessionConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "session_conflict"


class SessionSerializer(serializers.Serializer):
    name = serializers.CharField(allow_null=True, help_text="null until the tenant first starts a session")
    status = serializers.CharField()
    placement = serializers.CharField()
    wanted = serializers.BooleanField()
    slot = serializers.CharField(allow_null=True)
    slot_state = serializers.CharField(allow_null=True)
    me = serializers.JSONField(allow_null=True)
    qr = serializers.DictField(allow_null=True)
    pairing_code = serializers.CharField(allow_blank=True)
    error = serializers.CharField(allow_blank=True)


def _session_body(view) -> dict:
    session = view.session
    if session is None:
        return {"name": None, "status": "STOPPED", "placement": "unplaced", "wanted": False, "slot": None,
                "slot_state": None, "me": None, "qr": None, "pairing_code": "", "error": ""}
    return {
        "name": session.name,
        "status": session.status,
        "placement": session.placement,
        "wanted": session.wanted,
        "slot": str(view.slot) if view.slot else None,
        "slot_state": view.slot.state if view.slot else None,
        "me": session.me,
        "qr": {"value": view.qr.value, "png_data_url": view.qr_data_url} if view.qr else None,
        "pairing_code": view.pairing_code,
        "error": view.error,
    }


class SessionView(APIView):
    """The tenant's WhatsApp session, read from its bridge now."""

    @extend_schema(
        parameters=[OpenApiParameter("pairing_phone", description="digits: also request a pairing code")],
        responses=SessionSerializer,
    )
    def get(self, request):
        phone = "".join(ch for ch in request.query_params.get("pairing_phone", "") if ch in "0123456789")
        return Response(_session_body(services.read_session(tenant=request.auth.tenant, pairing_phone=phone)))


class SessionStartInput(serializers.Serializer):
    phone_number_id = serializers.RegexField(r"^[0-9]{5,32}\Z", required=False, help_text="Cloud API numbers only")


class SessionStartView(APIView):
    @extend_schema(request=SessionStartInput, responses={202: SessionSerializer})
    def post(self, request):
        data = SessionStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = request.auth.tenant
        try:
            services.start_session(tenant=tenant, phone_number_id=data.validated_data.get("phone_number_id", ""))
        except services.SessionError as exc:
            raise SessionConflict(str(exc))
        return Response(_session_body(services.read_session(tenant=tenant)), status=status.HTTP_202_ACCEPTED)


class SessionStopView(APIView):
    logout = False

    @extend_schema(request=None, responses=SessionSerializer)
    def post(self, request):
        tenant = request.auth.tenant
        if self.logout:
            services.logout_session(tenant=tenant)
        else:
            services.stop_session(tenant=tenant)
        return Response(_session_body(services.read_session(tenant=tenant)))


class UsageView(APIView):
    """Month-to-date cost of the calling tenant against its tier's price."""

    def get(self, request):
        tenant = request.auth.tenant
        cost = services.tenant_cost_month_to_date(tenant=tenant)
        return Response(
            {
                "period": "month_to_date",
                "currency": "USD",
                "slots": str(cost.slots),
                "messages": str(cost.messages),
                "ai": str(cost.ai),
                "total": str(cost.total),
                "tier_monthly_price": str(tenant.tier.monthly_price),
            }
        )


class SlotInput(serializers.Serializer):
    dialect = serializers.ChoiceField(choices=[Slot.Dialect.WAHA, Slot.Dialect.CLOUD, Slot.Dialect.SANDBOX])
    url = serializers.URLField()
    api_key = serializers.CharField(max_length=256)
    tier = serializers.SlugRelatedField(slug_field="name", queryset=Tier.objects.all())
    capacity = serializers.IntegerField(min_value=1, max_value=1000)
    name = serializers.CharField(required=False, default="", max_length=64)


class StaffSlotsView(APIView):
    """Staff only: list pools, and register a bridge server (WAHA, Cloud API) as a slot."""

    # Staff users, not tenant keys: the admin's session, or HTTP Basic for scripts.
    authentication_classes = [SessionAuthentication, BasicAuthentication]
    permission_classes = [IsAdminUser]

    def get(self, request):
        return Response(
            [
                {"tier": p.tier.name, "slots_by_state": p.slots_by_state, "capacity": p.capacity, "used": p.used,
                 "waiting": p.waiting, "utilisation": p.utilisation}
                for p in pool_statuses()
            ]
        )

    @extend_schema(request=SlotInput)
    def post(self, request):
        data = SlotInput(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        try:
            slot = services.register_static_slot(
                dialect=v["dialect"], base_url=v["url"], api_key=v["api_key"], tier=v["tier"],
                capacity=v["capacity"], name=v["name"],
            )
        except services.SlotUnreachable as exc:
            return Response({"code": "slot_unreachable", "detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response({"id": slot.pk, "name": slot.name, "state": slot.state}, status=status.HTTP_201_CREATED)
