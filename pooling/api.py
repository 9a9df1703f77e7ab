import json

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import APIException, NotFound
from rest_framework.permissions import IsAdminUser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from pooling import services
from pooling.models import CloudNumber, Slot
from pooling.selectors import pool_statuses
from tenants.authentication import ThrottledBasicAuthentication
from tenants.models import Tenant, Tier
from waplatform.db import analytics


class SessionConflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "session_conflict"


class NumberRefused(APIException):
    def __init__(self, exc: services.NumberError):
        self.status_code = exc.http_status
        super().__init__(detail=str(exc), code=exc.code)


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
    phone_number_id = serializers.RegexField(r"^[0-9]{5,32}\Z", required=False, help_text="Cloud API numbers only")


class SessionStartView(APIView):
    @extend_schema(request=SessionStartInput, responses={202: SessionSerializer})
    def post(self, request):
        data = SessionStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = request.auth.tenant
        try:
            services.start_session(tenant=tenant, phone_number_id=data.validated_data.get("phone_number_id", ""))
        except services.NumberError as exc:
            raise NumberRefused(exc) from None
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
    media = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="Stored media, by the byte-month.")
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    tier_monthly_price = serializers.DecimalField(max_digits=12, decimal_places=2)
    price_to_date = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="The tier's price for the part of the month the tenant existed.")
    usage = serializers.DictField(child=serializers.IntegerField(), help_text='Counters, e.g. {"media_bytes": 1024}.')


class UsageView(APIView):
    """Month-to-date cost of the calling tenant against its tier's price."""

    @extend_schema(responses=UsageSerializer)
    def get(self, request):
        tenant = request.auth.tenant
        with analytics():  # a cost report: from the read replica when there is one
            cost = services.tenant_cost_month_to_date(tenant=tenant)
            usage = services.tenant_usage(tenant=tenant)
        return Response(UsageSerializer({
            "period": "month_to_date",
            "since": cost.since,
            "currency": "USD",
            "slots": cost.slots,
            "messages": cost.messages,
            "ai": cost.ai,
            "media": cost.media,
            "total": cost.total,
            "tier_monthly_price": tenant.tier.monthly_price,
            "price_to_date": cost.price_to_date,
            "usage": usage,
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
    authentication_classes = [SessionAuthentication, ThrottledBasicAuthentication]
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


# --- Cloud numbers ------------------------------------------------------------------


class NumberSerializer(serializers.ModelSerializer):
    tenant = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    own_token = serializers.SerializerMethodField(help_text="Sends use the tenant's own Meta token")

    class Meta:
        model = CloudNumber
        fields = ["phone_number_id", "tenant", "source", "display_phone_number", "own_token", "assigned_at"]

    def get_own_token(self, number) -> bool:
        return bool(number.access_token)


class NumberClaimInput(serializers.Serializer):
    phone_number_id = serializers.RegexField(r"^\d{5,32}$", help_text="Meta's id of the number")
    access_token = serializers.CharField(max_length=1024, write_only=True,
                                         help_text="Your Meta access token that can read the number")


class NumbersView(APIView):
    """The Cloud API numbers the calling tenant holds (only these can be named in session/start)."""

    @extend_schema(responses=NumberSerializer(many=True))
    def get(self, request):
        numbers = CloudNumber.objects.filter(tenant=request.auth.tenant).select_related("tenant")
        return Response(NumberSerializer(numbers, many=True).data)


class NumberClaimView(APIView):
    """Claim a Cloud number by proving your access token reads it on Meta's Graph API."""

    @extend_schema(request=NumberClaimInput, responses={201: NumberSerializer})
    def post(self, request):
        data = NumberClaimInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            number = services.claim_number_with_token(tenant=request.auth.tenant, **data.validated_data)
        except services.NumberError as exc:
            raise NumberRefused(exc) from None
        return Response(NumberSerializer(number).data, status=status.HTTP_201_CREATED)


class StaffNumberInput(serializers.Serializer):
    phone_number_id = serializers.RegexField(r"^\d{5,32}$")
    tenant = serializers.SlugRelatedField(slug_field="slug", queryset=Tenant.objects.all())


class StaffView(APIView):
    authentication_classes = [SessionAuthentication, ThrottledBasicAuthentication]
    permission_classes = [IsAdminUser]


class StaffNumbersView(StaffView):
    """Staff only: every assigned Cloud number, and assigning one to a tenant."""

    @extend_schema(responses=NumberSerializer(many=True))
    def get(self, request):
        return Response(NumberSerializer(CloudNumber.objects.select_related("tenant"), many=True).data)

    @extend_schema(request=StaffNumberInput, responses={201: NumberSerializer})
    def post(self, request):
        data = StaffNumberInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            number = services.assign_number(**data.validated_data)
        except services.NumberError as exc:
            raise NumberRefused(exc) from None
        return Response(NumberSerializer(number).data, status=status.HTTP_201_CREATED)


class StaffNumberView(StaffView):
    """Staff only: release a number (refused while its tenant's session runs on it)."""

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, phone_number_id: str):
        try:
            released = services.release_number(phone_number_id=phone_number_id)
        except services.NumberError as exc:
            raise NumberRefused(exc) from None
        if released is None:
            return Response({"code": "not_found", "detail": f"No tenant holds Cloud number {phone_number_id}."},
                            status=status.HTTP_404_NOT_FOUND)
        return Response(status=status.HTTP_204_NO_CONTENT)
