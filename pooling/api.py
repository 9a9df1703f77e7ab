import json

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import BasicAuthentication, SessionAuthentication
from rest_framework.exceptions import APIException, NotFound
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import BaseRenderer, JSONRenderer
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
    name = serializers.CharField()
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
        phone = "".join(ch for ch in request.query_params.get("pairing_phone", "") if ch.isdigit())
        return Response(_session_body(services.read_session(tenant=request.auth.tenant, pairing_phone=phone)))


class PngRenderer(BaseRenderer):
    """Lets a client ask for `Accept: image/png`; errors still go out as `{code, detail}` JSON."""

    media_type = "image/png"
    format = "png"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else json.dumps(data).encode()


class QrPngView(APIView):
    """The QR code to scan, as a PNG image (the same code GET /api/v1/session carries as a data URL)."""

    renderer_classes = [JSONRenderer, PngRenderer]

    @extend_schema(
        operation_id="session_qr_png",
        responses={
            (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="Scan it in WhatsApp: "
                                                "Settings → Linked devices → Link a device."),
            404: OpenApiResponse(description="No QR code now: the session is not waiting for a scan."),
        },
    )
    def get(self, request):
        view = services.read_session(tenant=request.auth.tenant)
        if view.qr is None:
            status_now = view.session.status if view.session else "STOPPED"
            hint = ("start it with POST /api/v1/session/start, then fetch this again"
                    if status_now == "STOPPED" else "read GET /api/v1/session for its state")
            raise NotFound(f"No QR code to scan: the session is {status_now}; {hint}.", code="no_qr")
        response = HttpResponse(view.qr.png, content_type="image/png")
        response["Cache-Control"] = "no-store"  # a QR code rotates every few seconds
        return response


class SessionStartInput(serializers.Serializer):
    phone_number_id = serializers.RegexField(r"^\d{5,32}$", required=False, help_text="Cloud API numbers only")


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


class UsageSerializer(serializers.Serializer):
    period = serializers.CharField(help_text='Always "month_to_date".')
    since = serializers.DateTimeField(help_text="Start of the month, or the tenant's creation if later.")
    currency = serializers.CharField()
    slots = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="Share of the slot time used.")
    messages = serializers.DecimalField(max_digits=12, decimal_places=2)
    ai = serializers.DecimalField(max_digits=12, decimal_places=2)
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    tier_monthly_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    price_to_date = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="The tier's price for the part of the month the tenant existed.")


class UsageView(APIView):
    """Month-to-date cost of the calling tenant against its tier's price."""

    @extend_schema(responses=UsageSerializer)
    def get(self, request):
        tenant = request.auth.tenant
        cost = services.tenant_cost_month_to_date(tenant=tenant)
        return Response(UsageSerializer({
            "period": "month_to_date",
            "since": cost.since,
            "currency": "USD",
            "slots": cost.slots,
            "messages": cost.messages,
            "ai": cost.ai,
            "total": cost.total,
            "tier_monthly_price": tenant.tier.monthly_price,
            "price_to_date": cost.price_to_date,
        }).data)


class SlotInput(serializers.Serializer):
    dialect = serializers.ChoiceField(choices=[Slot.Dialect.WAHA, Slot.Dialect.CLOUD, Slot.Dialect.SANDBOX])
    url = serializers.URLField()
    api_key = serializers.CharField(max_length=256)
    tier = serializers.SlugRelatedField(slug_field="name", queryset=Tier.objects.all())
    capacity = serializers.IntegerField(min_value=1, max_value=1000)
    name = serializers.CharField(required=False, default="", max_length=64)


class PoolSerializer(serializers.Serializer):
    tier = serializers.CharField(source="tier.name")
    slots_by_state = serializers.DictField(child=serializers.IntegerField(), help_text="slot state → count")
    capacity = serializers.IntegerField(help_text="Sessions the placeable slots hold.")
    used = serializers.IntegerField()
    waiting = serializers.IntegerField(help_text="Sessions waiting for room.")
    utilisation = serializers.FloatField(help_text="used / capacity, in percent.")


class RegisteredSlotSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    state = serializers.CharField()


class StaffSlotsView(APIView):
    """Staff only: list pools, and register a bridge server (WAHA, Cloud API) as a slot."""

    # Staff users, not tenant keys: the admin's session, or HTTP Basic for scripts.
    authentication_classes = [SessionAuthentication, BasicAuthentication]
    permission_classes = [IsAdminUser]

    @extend_schema(responses=PoolSerializer(many=True))
    def get(self, request):
        return Response(PoolSerializer(pool_statuses(), many=True).data)

    @extend_schema(request=SlotInput, responses={201: RegisteredSlotSerializer})
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
        return Response(RegisteredSlotSerializer(slot).data, status=status.HTTP_201_CREATED)
